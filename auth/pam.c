#include "auth/auth.h"

#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conv_data {
	const char *user;
	const char *password;
};

/*
 * Answers every message of one call: the password for PAM_PROMPT_ECHO_OFF, the user name
 * for PAM_PROMPT_ECHO_ON, nothing for text and error messages. Linux-PAM passes msg as an
 * array of pointers.
 */
static int
conversation(int num_msg, const struct pam_message **msg, struct pam_response **resp_r,
	     void *appdata)
{
	struct conv_data *cd = appdata;
	struct pam_response *resp;
	int i;

	if (num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	if ((resp = calloc((size_t)num_msg, sizeof(*resp))) == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < num_msg; i++) {
		const char *answer = NULL;

		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			answer = cd->password;
			break;
		case PAM_PROMPT_ECHO_ON:
			answer = cd->user;
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			continue;
		default:
			goto fail;
		}
		if ((resp[i].resp = strdup(answer)) == NULL)
			goto fail;
	}
	*resp_r = resp;
	return PAM_SUCCESS;
fail:
	for (i = 0; i < num_msg; i++) {
		if (resp[i].resp != NULL) {
			explicit_bzero(resp[i].resp, strlen(resp[i].resp));
			free(resp[i].resp);
		}
	}
	free(resp);
	return PAM_CONV_ERR;
}

enum auth_result
auth_pam(const char *service, const char *user, const char *password, const char *rhost,
	 char **user_r, char *msg, size_t msgsize)
{
	struct conv_data cd = { .user = user, .password = password };
	struct pam_conv conv = { .conv = conversation, .appdata_ptr = &cd };
	enum auth_result res = AUTH_ERROR;
	pam_handle_t *pamh = NULL;
	const void *item = NULL;
	int r;

	*user_r = NULL;
	msg[0] = '\0';
	r = pam_start(service, user, &conv, &pamh);
	if (r != PAM_SUCCESS) {
		snprintf(msg, msgsize, "pam_start: %s", pam_strerror(pamh, r));
		return AUTH_ERROR;
	}
	if (rhost != NULL && (r = pam_set_item(pamh, PAM_RHOST, rhost)) != PAM_SUCCESS) {
		snprintf(msg, msgsize, "PAM_RHOST: %s", pam_strerror(pamh, r));
		goto out;
	}
	r = pam_authenticate(pamh, PAM_DISALLOW_NULL_AUTHTOK);
	if (r != PAM_SUCCESS) {
		snprintf(msg, msgsize, "%s", pam_strerror(pamh, r));
		res = (r == PAM_AUTH_ERR || r == PAM_USER_UNKNOWN || r == PAM_MAXTRIES ||
		       r == PAM_CRED_INSUFFICIENT) ? AUTH_FAILED : AUTH_ERROR;
		goto out;
	}
	r = pam_acct_mgmt(pamh, PAM_DISALLOW_NULL_AUTHTOK);
	if (r != PAM_SUCCESS) {
		snprintf(msg, msgsize, "account: %s", pam_strerror(pamh, r));
		res = (r == PAM_ACCT_EXPIRED || r == PAM_NEW_AUTHTOK_REQD) ? AUTH_EXPIRED :
		      (r == PAM_PERM_DENIED || r == PAM_AUTH_ERR || r == PAM_USER_UNKNOWN) ?
		      AUTH_DENIED : AUTH_ERROR;
		goto out;
	}
	r = pam_setcred(pamh, PAM_ESTABLISH_CRED);
	if (r != PAM_SUCCESS) {
		snprintf(msg, msgsize, "setcred: %s", pam_strerror(pamh, r));
		goto out;
	}
	/* A module may map the name the client typed to another (RFC-less but common). */
	r = pam_get_item(pamh, PAM_USER, &item);
	if (r != PAM_SUCCESS || item == NULL || *(const char *)item == '\0') {
		snprintf(msg, msgsize, "PAM_USER not set");
		goto out;
	}
	if ((*user_r = strdup(item)) == NULL) {
		snprintf(msg, msgsize, "out of memory");
		goto out;
	}
	res = AUTH_OK;
out:
	pam_end(pamh, r);
	return res;
}
