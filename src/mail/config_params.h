/* config_params.h - the table of main.cf parameters (internal to config.c).
 *
 * One row per parameter facteur knows: the ones it implements (with a type,
 * a default and limits) and the Postfix ones it does not implement yet
 * (their setting is a warning, never an error, so that an administrator's
 * existing main.cf runs).
 */
#ifndef FACTEUR_MAIL_CONFIG_PARAMS_H
#define FACTEUR_MAIL_CONFIG_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

enum config_type {
	CONFIG_T_STR,	/* free text, optionally one of "choices" */
	CONFIG_T_BOOL,	/* yes/no/true/false */
	CONFIG_T_INT,	/* decimal in [min, max] */
	CONFIG_T_TIME,	/* Postfix time: number + s/m/h/d/w, default unit */
	CONFIG_T_SIZE,	/* bytes, decimal (Postfix has no size units) */
	CONFIG_T_LIST,	/* comma/white space separated items */
};

enum config_param_flag {
	/* facteur reads this parameter. */
	CONFIG_F_IMPLEMENTED = 1u << 0,
	/* The default is computed at run time (myhostname, mydomain). */
	CONFIG_F_COMPUTED = 1u << 1,
	/* Postfix parameter that only locates Postfix's own programs and
	 * files: never meaningful for facteur. */
	CONFIG_F_LOCATING = 1u << 2,
	/* Each list item must be a lookup table "type:name". */
	CONFIG_F_TABLES = 1u << 3,
	/* Each list item must be a listener "address:port". */
	CONFIG_F_LISTENER = 1u << 4,
};

struct config_param {
	const char *name;
	enum config_type type;
	/* Default value text ($name expanded when read); NULL for computed
	 * defaults and for parameters facteur does not implement. */
	const char *def;
	/* CONFIG_T_TIME: unit of a bare number ('s', 'm', 'h', 'd', 'w'). */
	char unit;
	/* CONFIG_T_INT / CONFIG_T_TIME (in seconds) / CONFIG_T_SIZE limits. */
	long long min, max;
	/* CONFIG_T_STR: allowed values separated by '|' ("" allowed when the
	 * string starts with '|'); NULL for any text. */
	const char *choices;
	unsigned flags;
};

extern const struct config_param config_params[];
extern const size_t config_params_count;

#endif
