# Install layout (cmake --install BUILD [--prefix P], DESTDIR honoured):
#
#   P/sbin/postern                       the administrator's command
#   P/sbin/sendmail, P/bin/mailq, P/bin/newaliases   (the last two are
#                                        symlinks to sendmail)
#   P/libexec/postern/<daemon>           master, smtpd, qmgr, local, showq,
#                                        ... (postern_daemon() installs them;
#                                        daemon_directory's default)
#   SYSCONFDIR/postern/postern.conf, master.conf   (config_directory's
#                                        default; /etc for prefix /usr)
#   P/share/man/man1/postern.1, sendmail.1, man5/postern.conf.5, master.conf.5,
#                                        postern-tables.5
#   P/lib/systemd/system/postern.service  (POSTERN_SYSTEMD_UNITDIR), with
#                                        ExecStart pointing at P/sbin/postern
#
# Included from the top-level CMakeLists.txt after the targets exist.

set(POSTERN_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
  "Where postern.service is installed (relative paths are under the prefix)")

# The unit names the installed command; everything else in it is literal
# ($MAINPID must survive, so no configure_file variable expansion).
set(_postern_unit_src ${CMAKE_SOURCE_DIR}/etc/postern.service)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_postern_unit_src})
file(READ ${_postern_unit_src} _postern_unit)
string(REPLACE "/usr/sbin/postern" "${CMAKE_INSTALL_FULL_SBINDIR}/postern"
  _postern_unit "${_postern_unit}")
file(WRITE ${CMAKE_BINARY_DIR}/postern.service "${_postern_unit}")
install(FILES ${CMAKE_BINARY_DIR}/postern.service
  DESTINATION ${POSTERN_SYSTEMD_UNITDIR})

install(FILES doc/postern.1 doc/sendmail.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES doc/postern.conf.5 doc/master.conf.5 doc/postern-tables.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)

# sendmail, mailq and newaliases: installed next to the sendmail target in
# the top-level CMakeLists.txt.
