#!/usr/bin/env python3
"""
postern check, and start and reload refusing what check calls an error:
the same messages, a non-zero exit, and no master left running (or the
old configuration kept on reload). Also: Postfix security settings Postern
does not implement are errors, master.conf -o overrides are validated,
and a repeated parameter warns.
"""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402


def setUpModule():
    H.require_binaries()


def errors(text):
    return [l for l in text.splitlines() if l.startswith("postern: error: ")]


class CheckStartReload(H.InstanceTestCase):
    def setUp(self):
        self.inst = self.make_instance()
        self.inst.prepare()

    def add_conf(self, text):
        self.inst.write("postern.conf", self.inst.conf_text() + text)

    def assertPasses(self):
        """check exits 0 with no error line; its stderr, for warnings."""
        r = self.inst.postern("check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(errors(r.stderr), [])
        return r.stderr

    def assertRefused(self, *needles):
        """check, start and start-fg all fail with the same error lines."""
        chk = self.inst.postern("check")
        self.assertEqual(chk.returncode, 78, chk.stderr)
        errs = errors(chk.stderr)
        self.assertTrue(errs, chk.stderr)
        for n in needles:
            self.assertTrue(any(n in e for e in errs), (n, chk.stderr))
        for cmd in ("start", "start-fg"):
            r = self.inst.postern(cmd, timeout=30)
            self.assertEqual(r.returncode, 78, (cmd, r.stderr))
            self.assertEqual(errors(r.stderr), errs, cmd)
            self.assertIn("not starting", r.stderr)
            self.assertFalse(H.port_accepts(self.inst.port), cmd)
            self.assertNotEqual(self.inst.postern("status").returncode, 0)
        return errs

    def test_clean_config_passes(self):
        self.assertPasses()

    def test_unsupported_table_type(self):
        self.add_conf("transport_maps = hash:/etc/postern/transport\n")
        self.assertRefused("transport_maps: table hash:/etc/postern/transport: "
                           "unsupported table type")

    def test_bad_enumerated_value(self):
        self.add_conf("smtpd_tls_security_level = bogus\n")
        self.assertRefused("parameter smtpd_tls_security_level: bad value 'bogus'")
        self.add_conf("inet_protocols = ipv4, ipx\n")
        self.assertRefused("parameter inet_protocols: bad value 'ipv4, ipx'")
        # a UIDL format that would not tell messages apart
        self.inst.write("postern.conf", self.inst.conf_text() + "pop3d_uidl_format = %08Xv\n")
        self.assertRefused("parameter pop3d_uidl_format: bad value '%08Xv'")

    def test_misspelled_command_in_master_conf(self):
        self.inst.services.append("cleanup unix n - n - - clenaup")
        self.inst.write_config()
        self.assertRefused("service cleanup: program %s/clenaup does not exist"
                           % self.inst.daemon_dir)

    def test_unreachable_queue_directory(self):
        blocker = self.inst.path("afile")
        self.inst.write("afile", "not a directory\n")
        self.inst.params["queue_directory"] = os.path.join(blocker, "queue")
        self.inst.write_config()
        self.assertRefused("queue_directory %s/queue: %s is not a directory"
                           % (blocker, blocker))

    @H.skip_unless_root("mail_owner's permissions need root")
    def test_mail_owner_cannot_reach_queue(self):
        locked = self.inst.path("locked")
        os.makedirs(locked)
        os.chmod(locked, 0o700)
        self.inst.params["queue_directory"] = os.path.join(locked, "queue")
        self.inst.write_config()
        self.assertRefused("mail_owner %s cannot reach it: %s has mode 0700"
                           % (H.UNPRIV_USER, locked))

    def test_bad_mynetworks(self):
        self.add_conf("mynetworks = 127.0.0.0/8 10.0.0.0/33\n")
        self.assertRefused("mynetworks: bad network address or CIDR block "
                           "\"10.0.0.0/33\"")

    def test_unimplemented_security_settings(self):
        self.add_conf("smtpd_tls_req_ccert = no\n"
                      "smtpd_relay_restrictions = permit_mynetworks, "
                      "permit_sasl_authenticated, reject_unauth_destination\n"
                      "smtpd_recipient_restrictions = permit_mynetworks, "
                      "check_policy_service unix:private/policy, "
                      "reject_rbl_client zen.spamhaus.org, reject_bogus\n"
                      "smtpd_helo_restrictions = check_helo_access\n"
                      "smtpd_restriction_classes = friends\n"
                      "smtpd_client_auth_rate_limit = 10\n"
                      "smtpd_client_connection_rate_limit = 0\n")
        errs = self.assertRefused(
            "smtpd_recipient_restrictions: unknown restriction \"reject_bogus\"",
            "smtpd_helo_restrictions: check_helo_access needs a table",
            "smtpd_restriction_classes: friends: no such parameter",
            "smtpd_client_auth_rate_limit = 10: Postern does not implement")
        # implemented restrictions are not refused
        self.assertFalse([e for e in errs if "check_policy_service" in e
                          or "reject_rbl_client" in e], errs)
        # what Postern does anyway, or "no", is not an error
        self.assertFalse([e for e in errs if "smtpd_relay_restrictions" in e
                          or "smtpd_tls_req_ccert" in e], errs)
        # nor a limit of 0, Postfix's "no limit"
        self.assertFalse([e for e in errs if "connection_rate_limit" in e], errs)

    def test_tls_protocols_and_ciphers(self):
        # what hardening guides put in main.cf is taken
        self.inst.make_cert("mx.example.test", level="may")
        base = self.inst.conf_text()
        self.add_conf("smtpd_tls_protocols = !SSLv2, !SSLv3, !TLSv1, !TLSv1.1\n"
                      "smtpd_tls_mandatory_protocols = >=TLSv1.2\n"
                      "smtpd_tls_mandatory_ciphers = high\n"
                      "smtpd_tls_exclude_ciphers = aNULL, eNULL, EXPORT, DES, RC4, MD5\n"
                      "smtp_tls_protocols = !SSLv2 !SSLv3\n"
                      "smtp_tls_mandatory_protocols = TLSv1.2:TLSv1.3\n")
        self.assertPasses()
        for line, needle in (
                ("smtpd_tls_protocols = TLSv1.4",
                 "parameter smtpd_tls_protocols: bad value 'TLSv1.4'"),
                ("smtp_tls_mandatory_protocols = <=TLSv1.1",
                 "parameter smtp_tls_mandatory_protocols: bad value '<=TLSv1.1'"),
                ("smtpd_tls_ciphers = strong",
                 "parameter smtpd_tls_ciphers: bad value 'strong'"),
                # a list OpenSSL can make nothing of stops the service
                ("smtpd_tls_ciphers = high\ntls_high_cipherlist = NO-SUCH-CIPHER",
                 "opportunistic TLS: TLS 1.2 cipher list")):
            self.inst.write("postern.conf", base + line + "\n")
            self.assertRefused(needle)

    def test_dh_param_file(self):
        # Mozilla's generator puts an RFC 7919 group here
        self.inst.make_cert("mx.example.test", level="may")
        base = self.inst.conf_text()
        good = self.inst.path("ffdhe2048.pem")
        subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH",
                        "-pkeyopt", "group:ffdhe2048", "-out", good], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        weak = self.inst.path("dh1024.pem")   # -dsaparam: made at once
        subprocess.run(["openssl", "dhparam", "-dsaparam", "-out", weak, "1024"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.add_conf("smtpd_tls_dh1024_param_file = %s\n" % good)
        self.assertPasses()
        for f, needle in ((weak, "dh key too small"),
                          (self.inst.path("cert.pem"), "no DH parameters in it"),
                          (self.inst.path("no-such.pem"), "no-such.pem")):
            self.inst.write("postern.conf", base +
                            "smtpd_tls_dh1024_param_file = %s\n" % f)
            errs = self.assertRefused("smtpd_tls_dh1024_param_file: ")
            self.assertTrue(any(needle in e for e in errs), (needle, errs))

    def test_sender_login_mismatch(self):
        base = self.inst.conf_text()
        self.add_conf("smtpd_sender_restrictions = reject_sender_login_mismatch\n")
        self.assertRefused("smtpd_sender_restrictions: reject_sender_login_mismatch "
                           "needs smtpd_sender_login_maps")
        self.inst.write("postern.conf", base +
                        "smtpd_sender_login_maps = inline:{a@example.test=a}\n"
                        "smtpd_recipient_restrictions = "
                        "reject_unauthenticated_sender_login_mismatch, "
                        "reject_known_sender_login_mismatch, "
                        "reject_authenticated_sender_login_mismatch, "
                        "reject_unauth_destination\n")
        self.assertPasses()

    def test_restriction_classes(self):
        # the old-style per-recipient policies: a class's own parameter is
        # no unknown parameter, and the class works as entry and result
        self.add_conf("smtpd_restriction_classes = strict, relaxed\n"
                      "strict = reject_unknown_sender_domain, reject_non_fqdn_sender\n"
                      "relaxed = permit\n"
                      "smtpd_recipient_restrictions = check_recipient_access "
                      "inline:{{alice@example.test=strict}, {bob@example.test=relaxed}}, "
                      "strict, reject_unauth_destination\n")
        warnings = self.assertPasses()
        self.assertNotIn("unknown parameter strict", warnings)
        self.assertNotIn("unknown parameter relaxed", warnings)
        self.add_conf("smtpd_restriction_classes = strict, permit\n"
                      "strict = reject_non_fqdn_sender\n")
        self.assertRefused("smtpd_restriction_classes: permit is the name of a "
                           "restriction")

    def test_eecdh_grade(self):
        # older hardening guides set it; ignored as by Postfix >= 3.6
        base = self.inst.conf_text()
        self.add_conf("smtpd_tls_eecdh_grade = ultra\n")
        self.assertIn("smtpd_tls_eecdh_grade = ultra: ignored, as by Postfix 3.6",
                      self.assertPasses())
        self.inst.write("postern.conf", base + "smtpd_tls_eecdh_grade = auto\n")
        self.assertNotIn("eecdh", self.assertPasses())
        self.inst.write("postern.conf", base + "smtpd_tls_eecdh_grade = medium\n")
        self.assertRefused("parameter smtpd_tls_eecdh_grade: bad value 'medium'")

    def test_sasl_security_options(self):
        # the lines of Postfix + Dovecot SASL guides are taken
        base = self.inst.conf_text()
        self.add_conf("smtpd_sasl_security_options = noanonymous, noplaintext\n"
                      "smtpd_sasl_tls_security_options = noanonymous\n"
                      "smtp_sasl_security_options = noanonymous\n")
        self.assertPasses()
        self.inst.write("postern.conf", base + "smtp_sasl_tls_security_options = "
                        "noanonymous, nosuch\n")
        self.assertRefused("parameter smtp_sasl_tls_security_options: bad value "
                           "'noanonymous, nosuch'")

    def test_smtp_ca_files_must_load(self):
        # the client would otherwise run without TLS, "may" in plain text
        self.add_conf("smtp_tls_CAfile = %s\n" % self.inst.path("no-such-bundle.pem"))
        self.assertRefused("cannot load smtp_tls_CAfile %s"
                           % self.inst.path("no-such-bundle.pem"))

    def test_tls_session_cache_databases_warn(self):
        # In Debian's default main.cf: Postern keeps TLS sessions without
        # tlsmgr, so the databases are not used; a warning, not a refusal
        self.add_conf("smtp_tls_session_cache_database = "
                      "btree:${data_directory}/smtp_scache\n"
                      "smtpd_tls_session_cache_database = "
                      "btree:${data_directory}/smtpd_scache\n")
        warnings = self.assertPasses()
        for p in ("smtp_tls_session_cache_database", "smtpd_tls_session_cache_database"):
            self.assertIn("%s = btree:" % p, warnings)
            self.assertIn("not used: Postern has no tlsmgr", warnings)
            self.assertNotIn("unknown parameter %s" % p, warnings)
        # The parameters it does implement pass.
        self.add_conf("smtp_tls_session_cache_timeout = 600s\n"
                      "smtp_connection_cache_on_demand = no\n"
                      "smtp_connection_cache_destinations = example.com\n"
                      "smtp_connection_cache_time_limit = 5s\n"
                      "smtp_connection_reuse_time_limit = 120s\n"
                      "smtp_connection_reuse_count_limit = 10\n")
        self.assertPasses()

    def test_open_relay_lists_refused(self):
        # neither list can refuse a foreign destination: Postfix refuses
        # to start, so does Postern
        self.add_conf("smtpd_relay_restrictions = permit_mynetworks\n"
                      "smtpd_recipient_restrictions = permit_sasl_authenticated\n")
        self.assertRefused("neither has reject_unauth_destination")

    def test_parameters_postern_implements_pass(self):
        self.add_conf("header_size_limit = 102400\nline_length_limit = 2048\n"
                      "hopcount_limit = 50\nsmtpd_client_restrictions = "
                      "permit_mynetworks, permit_sasl_authenticated, reject\n")
        self.assertPasses()

    def test_master_conf_overrides(self):
        self.inst.services.append(
            "127.0.0.1:%d inet n - n - - smtpd -o smtpd_tls_wrapermode=yes"
            % H.free_port())
        self.inst.services.append(
            "127.0.0.1:%d inet n - n - - smtpd -o smtpd_tls_security_level=maybe"
            % H.free_port())
        self.inst.services.append(
            "127.0.0.1:%d inet n - n - - smtpd -o smtpd_milters=unix:milter"
            % H.free_port())
        self.inst.write_config()
        self.assertRefused("-o unknown parameter smtpd_tls_wrapermode",
                           "-o parameter smtpd_tls_security_level: bad value 'maybe'",
                           "-o smtpd_milters = unix:milter: milter unix: endpoint "
                           "needs an absolute path")

    def test_spawn_lines(self):
        # spawn must name a non-root user and an existing absolute command
        self.inst.services += [
            "p1 unix - n n - 0 spawn user=root argv=/bin/cat",
            "p2 unix - n n - 0 spawn argv=/bin/cat",
            "p3 unix - n n - 0 spawn user=nobody argv=/nonexistent/policyd",
            "p4 unix - n n - 0 spawn user=nobody argv=cat",
            "p5 unix - n n - 0 spawn -o p5_time_limit=soon user=nobody argv=/bin/cat",
        ]
        self.inst.write_config()
        self.assertRefused("service p1: user=root is root",
                           "service p2: spawn without user=",
                           "service p3: argv=/nonexistent/policyd: No such file",
                           "service p4: spawn without argv=/absolute/path",
                           "service p5: -o p5_time_limit=soon is not a time")
        # a good line, its time limit in postern.conf: no error, no
        # "unknown parameter" warning
        self.inst.services[-5:] = [
            "policyd-spf unix - n n - 0 spawn user=nobody argv=/bin/cat"]
        self.inst.write_config()
        self.add_conf("policyd-spf_time_limit = 3600s\n")
        self.assertNotIn("policyd-spf_time_limit", self.assertPasses())
        self.add_conf("policyd-spf_time_limit = soon\n")
        self.assertRefused("policyd-spf_time_limit = soon is not a time")

    def test_repeated_parameter_warns(self):
        text = self.inst.conf_text()
        n = len(text.splitlines()) + 1
        self.add_conf("myhostname = other.example.test\n")
        r = self.inst.postern("check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("postern.conf:%d: overriding earlier entry: "
                      "myhostname=other.example.test" % n, r.stderr)
        r = self.inst.postern("conf", "myhostname", check=True)
        self.assertEqual(r.stdout, "myhostname = other.example.test\n")
        self.assertIn("overriding earlier entry", r.stderr)

    def test_reload_refuses_and_keeps_running(self):
        self.inst.start(prepare=False)
        self.add_conf("smtpd_tls_security_level = bogus\n")
        r = self.inst.postern("reload")
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("parameter smtpd_tls_security_level: bad value 'bogus'",
                      r.stderr)
        self.assertIn("not reloading", r.stderr)
        self.assertNotIn("refreshing", self.inst.log())
        self.assertTrue(H.port_accepts(self.inst.port))
        self.inst.write_config()
        r = self.inst.postern("reload")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_master_logs_why_exec_failed(self):
        # check cannot see this one: the program is executable, but its
        # interpreter does not exist, so only execve finds out
        libexec = self.inst.path("libexec-broken")
        os.makedirs(libexec)
        for name in os.listdir(self.inst.daemon_dir):
            src = os.path.join(self.inst.daemon_dir, name)
            if os.path.isfile(src) and os.access(src, os.X_OK):
                os.symlink(src, os.path.join(libexec, name))
        self.inst.write("libexec-broken/broken", "#!/nonexistent/interpreter\n",
                        mode=0o755)
        self.inst.params["daemon_directory"] = libexec
        self.inst.services.append("broken unix n - n 60 1 broken")
        self.inst.start()
        self.inst.wait_log(r"postern/master\[\d+\]: warning: service broken/unix: "
                           r"cannot exec %s/broken: No such file or directory"
                           % re.escape(libexec))


if __name__ == "__main__":
    H.main()
