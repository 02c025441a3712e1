/* sasl_test.c - unit tests for the SASL PLAIN and LOGIN server state
 * machines: successful exchanges with and without an initial response,
 * malformed base64, missing NULs, authzid mismatch, cancel, field limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mail/auth.h"
#include "mail/sasl.h"

#include "lib/base64.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Base64 of a PLAIN message written with '|' for NUL. */
static char *test_plain(const char *bars)
{
	size_t len = strlen(bars);
	char *raw = strdup(bars);
	for (size_t i = 0; i < len; i++)
		if (raw[i] == '|')
			raw[i] = '\0';
	char *b64 = base64_encode(raw, len);
	free(raw);
	return b64;
}

/* "u|" repeated: a string of n copies of c. */
static char *test_rep(char c, size_t n)
{
	char *s = malloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

enum { IR_NONE, IR_GIVEN };

static void test_plain_rows(void **state)
{
	(void)state;
	char *u255 = test_rep('u', AUTH_USER_MAX), *u256 = test_rep('u', AUTH_USER_MAX + 1);
	char *p1024 = test_rep('p', AUTH_PASSWORD_MAX), *p1025 = test_rep('p', AUTH_PASSWORD_MAX + 1);
	char *p1023 = test_rep('p', AUTH_PASSWORD_MAX - 1), *u254 = test_rep('u', AUTH_USER_MAX - 1);
	char m_max[2048], m_max1[2048], m_u256[2048], m_p1025[2048], m_z256[2048], m_maxm1[2048];
	snprintf(m_max, sizeof(m_max), "%s|%s|%s", u255, u255, p1024);
	snprintf(m_maxm1, sizeof(m_maxm1), "%s|%s|%s", u254, u254, p1023);
	snprintf(m_max1, sizeof(m_max1), "|%s|%s", u255, p1024);
	snprintf(m_u256, sizeof(m_u256), "|%s|pw", u256);
	snprintf(m_p1025, sizeof(m_p1025), "|u|%s", p1025);
	snprintf(m_z256, sizeof(m_z256), "%s|%s|pw", u256, u256);
	const struct {
		const char *name;
		const char *message; /* '|' = NUL; NULL: use raw */
		const char *raw;     /* client line as sent */
		bool initial;
		int ret;
		const char *user, *password;
	} rows[] = {
		{ "no authzid", "|tim|tanstaaftanstaaf", NULL, false, 1, "tim", "tanstaaftanstaaf" },
		{ "no authzid, IR", "|tim|tanstaaf", NULL, true, 1, "tim", "tanstaaf" },
		{ "authzid equal", "tim@ex.test|tim@ex.test|pw", NULL, false, 1, "tim@ex.test", "pw" },
		{ "authzid differs", "admin|tim|pw", NULL, false, -1, NULL, NULL },
		{ "authzid prefix", "ti|tim|pw", NULL, false, -1, NULL, NULL },
		{ "no NUL", "timpw", NULL, false, -1, NULL, NULL },
		{ "one NUL", "tim|pw", NULL, false, -1, NULL, NULL },
		{ "three NULs", "|tim|pw|x", NULL, false, -1, NULL, NULL },
		{ "empty user", "||pw", NULL, false, -1, NULL, NULL },
		{ "empty password", "|tim|", NULL, false, -1, NULL, NULL },
		{ "all empty", "||", NULL, false, -1, NULL, NULL },
		{ "empty message", "", NULL, false, -1, NULL, NULL },
		{ "empty IR =", NULL, "=", true, -1, NULL, NULL },
		{ "= not IR", NULL, "=", false, -1, NULL, NULL },
		{ "bad base64", NULL, "AHRpbQB", false, -1, NULL, NULL },
		{ "bad char", NULL, "AHRp!QBwdw==", false, -1, NULL, NULL },
		{ "trailing space", NULL, "AHRpbQBwdw== ", false, -1, NULL, NULL },
		{ "cancel", NULL, "*", false, -1, NULL, NULL },
		{ "cancel IR", NULL, "*", true, -1, NULL, NULL },
		{ "fields max-1", m_maxm1, NULL, false, 1, u254, p1023 },
		{ "fields max", m_max, NULL, false, 1, u255, p1024 },
		{ "fields max, no authzid", m_max1, NULL, false, 1, u255, p1024 },
		{ "user max+1", m_u256, NULL, false, -1, NULL, NULL },
		{ "password max+1", m_p1025, NULL, false, -1, NULL, NULL },
		{ "authzid max+1", m_z256, NULL, false, -1, NULL, NULL },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *line = rows[i].message != NULL ? test_plain(rows[i].message) : strdup(rows[i].raw);
		struct sasl_server *s = sasl_server_new("plain", rows[i].initial ? line : NULL);
		assert_non_null(s);
		char *challenge = NULL;
		const char *error = NULL;
		int ret = sasl_server_step(s, NULL, &challenge, &error);
		if (!rows[i].initial) {
			assert_int_equal(ret, 0);
			assert_string_equal(challenge, ""); /* RFC 4616: empty challenge */
			free(challenge);
			ret = sasl_server_step(s, line, &challenge, &error);
		}
		if (ret != rows[i].ret)
			fail_msg("row %s: got %d (%s)", rows[i].name, ret, error != NULL ? error : "");
		assert_null(challenge);
		if (ret == 1) {
			const char *user, *password;
			sasl_server_credentials(s, &user, &password);
			assert_string_equal(user, rows[i].user);
			assert_string_equal(password, rows[i].password);
		} else {
			assert_non_null(error);
			assert_int_equal(sasl_server_cancelled(s), strcmp(line, "*") == 0);
		}
		/* after the end, any further step is an error */
		assert_int_equal(sasl_server_step(s, "AAAA", &challenge, &error), -1);
		sasl_server_free(&s);
		assert_null(s);
		free(line);
	}
	free(u255), free(u256), free(p1024), free(p1025), free(p1023), free(u254);
}

static void test_login_rows(void **state)
{
	(void)state;
	char *u255 = test_rep('u', AUTH_USER_MAX), *u256 = test_rep('u', AUTH_USER_MAX + 1);
	char *p1024 = test_rep('p', AUTH_PASSWORD_MAX), *p1025 = test_rep('p', AUTH_PASSWORD_MAX + 1);
	char *b_u255 = base64_encode(u255, strlen(u255)), *b_u256 = base64_encode(u256, strlen(u256));
	char *b_p1024 = base64_encode(p1024, strlen(p1024));
	char *b_p1025 = base64_encode(p1025, strlen(p1025));
	const struct {
		const char *name;
		const char *ir;		/* initial response (user) or NULL */
		const char *user_line;	/* NULL when ir is given */
		const char *pass_line;	/* NULL: exchange ends at the user line */
		int ret;
		const char *user, *password;
	} rows[] = {
		{ "normal", NULL, "dGlt", "c2VjcmV0", 1, "tim", "secret" },
		{ "with IR", "dGlt", NULL, "c2VjcmV0", 1, "tim", "secret" },
		{ "cancel at user", NULL, "*", NULL, -1, NULL, NULL },
		{ "cancel at password", NULL, "dGlt", "*", -1, NULL, NULL },
		{ "bad base64 user", NULL, "dGl", NULL, -1, NULL, NULL },
		{ "bad base64 password", NULL, "dGlt", "c2VjcmV0=", -1, NULL, NULL },
		{ "empty user", NULL, "", NULL, -1, NULL, NULL },
		{ "empty IR", "=", NULL, NULL, -1, NULL, NULL },
		{ "empty password", NULL, "dGlt", "", -1, NULL, NULL },
		{ "NUL in user", NULL, "dABt", NULL, -1, NULL, NULL },
		{ "NUL in password", NULL, "dGlt", "cwBj", -1, NULL, NULL },
		{ "max", NULL, b_u255, b_p1024, 1, u255, p1024 },
		{ "user max+1", NULL, b_u256, NULL, -1, NULL, NULL },
		{ "password max+1", NULL, b_u255, b_p1025, -1, NULL, NULL },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct sasl_server *s = sasl_server_new("LOGIN", rows[i].ir);
		assert_non_null(s);
		char *challenge = NULL;
		const char *error = NULL;
		int ret = sasl_server_step(s, NULL, &challenge, &error);
		if (rows[i].ir == NULL) {
			assert_int_equal(ret, 0);
			assert_string_equal(challenge, "VXNlcm5hbWU6");
			free(challenge);
			ret = sasl_server_step(s, rows[i].user_line, &challenge, &error);
		}
		if (rows[i].pass_line != NULL) {
			if (ret != 0)
				fail_msg("row %s: user step %d (%s)", rows[i].name, ret, error);
			assert_string_equal(challenge, "UGFzc3dvcmQ6");
			free(challenge);
			ret = sasl_server_step(s, rows[i].pass_line, &challenge, &error);
		}
		if (ret != rows[i].ret)
			fail_msg("row %s: got %d", rows[i].name, ret);
		assert_null(challenge);
		if (ret == 1) {
			const char *user, *password;
			sasl_server_credentials(s, &user, &password);
			assert_string_equal(user, rows[i].user);
			assert_string_equal(password, rows[i].password);
		}
		sasl_server_free(&s);
	}
	free(u255), free(u256), free(p1024), free(p1025);
	free(b_u255), free(b_u256), free(b_p1024), free(b_p1025);
}

static void test_misuse(void **state)
{
	(void)state;
	static const char *const mechs[] = { "CRAM-MD5", "", "PLAINX", "XOAUTH2" };
	for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		assert_null(sasl_server_new(mechs[i], NULL));
	char *challenge;
	const char *error;
	/* a line on the first step, and no line on a later one */
	struct sasl_server *s = sasl_server_new("PLAIN", NULL);
	assert_int_equal(sasl_server_step(s, "AHUAcA==", &challenge, &error), -1);
	sasl_server_free(&s);
	s = sasl_server_new("LOGIN", NULL);
	assert_int_equal(sasl_server_step(s, NULL, &challenge, &error), 0);
	free(challenge);
	assert_int_equal(sasl_server_step(s, NULL, &challenge, &error), -1);
	sasl_server_free(&s);
	/* an over-long line is refused before decoding */
	char *longline = test_rep('A', SASL_LINE_MAX + 4);
	s = sasl_server_new("PLAIN", NULL);
	assert_int_equal(sasl_server_step(s, NULL, &challenge, &error), 0);
	free(challenge);
	assert_int_equal(sasl_server_step(s, longline, &challenge, &error), -1);
	sasl_server_free(&s);
	free(longline);
	sasl_server_free(&s); /* NULL is fine */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_rows),
		cmocka_unit_test(test_login_rows),
		cmocka_unit_test(test_misuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
