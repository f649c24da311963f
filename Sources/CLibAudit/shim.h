// The Linux audit library (Debian package libaudit-dev): audit_open, audit_log_user_message.
#include <libaudit.h>
