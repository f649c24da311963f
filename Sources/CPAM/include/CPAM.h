#ifndef PORTCULLIS_CPAM_H
#define PORTCULLIS_CPAM_H

#include <security/pam_appl.h>
#include <shadow.h>

// libpam (libpam0g-dev) and the shadow file for the session launcher, and PAM's conversation
// function, which Swift cannot write safely (PAM frees the responses it is given with free()).

/// pam_start with a conversation that never prompts (authentication already happened with the
/// certificate: a prompt is refused with PAM_CONV_ERR) and passes PAM's informational and error
/// text to `message_fd` (the session's terminal, or -1 to discard it: exec and subsystems).
int pc_pam_start(const char *service, const char *user, int message_fd, pam_handle_t **handle);
/// pam_set_item for the string items (PAM_TTY, PAM_RHOST, PAM_RUSER).
int pc_pam_set_string(pam_handle_t *handle, int item, const char *value);
/// The last error message PAM passed to the conversation (a module's reason), or "".
const char *pc_pam_last_message(void);
/// Forgets it, before the next PAM call.
void pc_pam_forget_message(void);

#endif
