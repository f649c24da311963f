#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "CPAM.h"

static int message_fd = -1;
static char last_message[512];
static struct pam_conv conversation;

static void say(const char *text) {
    if (text == NULL) return;
    strncpy(last_message, text, sizeof(last_message) - 1);
    last_message[sizeof(last_message) - 1] = 0;
    if (message_fd < 0) return;
    size_t length = strlen(text);
    // A terminal in raw mode is the user's business: \r\n, as sshd writes PAM's text.
    while (length > 0) {
        ssize_t written = write(message_fd, text, length);
        if (written <= 0) return;
        text += written;
        length -= (size_t)written;
    }
    (void)write(message_fd, "\r\n", 2);
}

static int converse(int count, const struct pam_message **messages, struct pam_response **responses, void *data) {
    (void)data;
    if (count <= 0 || count > PAM_MAX_NUM_MSG) return PAM_CONV_ERR;
    struct pam_response *answers = calloc((size_t)count, sizeof(struct pam_response));
    if (answers == NULL) return PAM_BUF_ERR;
    for (int index = 0; index < count; index++) {
        switch (messages[index]->msg_style) {
        case PAM_TEXT_INFO:
        case PAM_ERROR_MSG:
            say(messages[index]->msg);
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
