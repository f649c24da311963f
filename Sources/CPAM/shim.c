#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "CPAM.h"

static int message_fd = -1;
static char last_message[512];
static struct pam_conv conversation;

/// Writes what PAM says to the terminal, waiting at most a second for room: a user who stops
/// reading (^S, a stalled channel) cannot hold the root launcher inside PAM.
static void write_bounded(const char *text, size_t length) {
    while (length > 0) {
        struct pollfd ready = { .fd = message_fd, .events = POLLOUT };
        if (poll(&ready, 1, 1000) != 1) return;
        ssize_t written = write(message_fd, text, length);
        if (written <= 0) return;
        text += written;
        length -= (size_t)written;
    }
}

static void say(const char *text, int is_error) {
    if (text == NULL) return;
    // Only an error is a reason a refusal can give; information (a motd, a warning) is not.
    if (is_error) {
        strncpy(last_message, text, sizeof(last_message) - 1);
        last_message[sizeof(last_message) - 1] = 0;
    }
    if (message_fd < 0) return;
    // A terminal in raw mode is the user's business: \r\n, as sshd writes PAM's text.
    write_bounded(text, strlen(text));
    write_bounded("\r\n", 2);
}

static int converse(int count, const struct pam_message **messages, struct pam_response **responses, void *data) {
    (void)data;
    if (count <= 0 || count > PAM_MAX_NUM_MSG) return PAM_CONV_ERR;
    struct pam_response *answers = calloc((size_t)count, sizeof(struct pam_response));
    if (answers == NULL) return PAM_BUF_ERR;
    for (int index = 0; index < count; index++) {
        switch (messages[index]->msg_style) {
        case PAM_TEXT_INFO:
            say(messages[index]->msg, 0);
            break;
        case PAM_ERROR_MSG:
            say(messages[index]->msg, 1);
            break;
        default:
            // PAM_PROMPT_ECHO_ON/OFF: nobody is asked anything here.
            free(answers);
            return PAM_CONV_ERR;
        }
    }
    *responses = answers;
    return PAM_SUCCESS;
}

int pc_pam_start(const char *service, const char *user, int fd, pam_handle_t **handle) {
    message_fd = fd;
    last_message[0] = 0;
    conversation.conv = converse;
    conversation.appdata_ptr = NULL;
    return pam_start(service, user, &conversation, handle);
}

int pc_pam_set_string(pam_handle_t *handle, int item, const char *value) { return pam_set_item(handle, item, value); }

const char *pc_pam_last_message(void) { return last_message; }

void pc_pam_forget_message(void) { last_message[0] = 0; }
