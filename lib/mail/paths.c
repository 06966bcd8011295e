/*
 * paths - the directories compiled into the mail library.
 *
 * Only postern_mail gets the POSTERN_SYSCONFDIR definition from CMake;
 * programs in other targets (the postern command, master) ask here.
 * The default is used only when neither -c DIR nor $MAIL_CONFIG says
 * otherwise.
 */
#include "mail/config.h"

#ifndef POSTERN_SYSCONFDIR
#define POSTERN_SYSCONFDIR "/etc/postern"
#endif

const char *
config_default_dir(void)
{
	return POSTERN_SYSCONFDIR;
}
