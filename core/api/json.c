// SPDX-License-Identifier: MIT
/* JSON helpers for the control API: every error names the field's path. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/api/api_internal.h"

int api_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void api_json_path(char *out, size_t len, const char *prefix, const char *key)
{
	if (prefix && *prefix)
		snprintf(out, len, "%s.%s", prefix, key);
	else
		snprintf(out, len, "%s", key);
}

json_object *api_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	/* Depth 16: the deepest valid document (drives[].rate_limiter.ops) is 4. */
	struct json_tokener *tok = json_tokener_new_ex(16);
	enum json_tokener_error jerr;
	json_object *v;
	size_t used;

	if (!tok) {
		api_fail(err, errlen, "out of memory");
		return NULL;
	}
	if (len > (size_t)INT32_MAX)
		len = INT32_MAX;
	v = json_tokener_parse_ex(tok, text ? text : "", (int)len);
	jerr = json_tokener_get_error(tok);
	used = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue || (!v && jerr == json_tokener_success)) {
		api_fail(err, errlen, "malformed JSON: the body ends early");
		json_object_put(v);
		v = NULL;
	} else if (jerr != json_tokener_success) {
		api_fail(err, errlen, "malformed JSON at byte %zu: %s", used,
			 json_tokener_error_desc(jerr));
		v = NULL;
	} else {
		while (used < len && strchr(" \t\r\n", text[used]))
			used++;
		if (used < len) {
			api_fail(err, errlen,
				 "malformed JSON: unexpected data after the value at byte %zu",
				 used);
			json_object_put(v);
			v = NULL;
		}
	}
	json_tokener_free(tok);
	return v;
}

int api_json_only(json_object *v, const char *prefix, const char *const *known, char *err,
		  size_t errlen)
{
	const char *where = prefix && *prefix ? prefix : "the body";

	if (!json_object_is_type(v, json_type_object))
		return api_fail(err, errlen, "%s: must be a JSON object", where);
	json_object_object_foreach(v, key, value)
	{
		const char *const *k;
		char path[256];

		(void)value;
		for (k = known; *k && strcmp(*k, key); k++)
			;
		if (*k)
			continue;
		api_json_path(path, sizeof(path), prefix, key);
		{
			char list[512] = "";
			size_t used = 0;

			for (k = known; *k && used < sizeof(list); k++)
				used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
							 k == known ? "" : ", ", *k);
			return api_fail(err, errlen, "%s: unknown field; known fields are %s", path,
					list);
		}
	}
	return 0;
}

/* The member, NULL if absent or null; -EINVAL if required and missing. */
static int api_json_member(json_object *obj, const char *prefix, const char *key, bool required,
			   json_object **out, char *path, size_t pathlen, char *err, size_t errlen)
{
	api_json_path(path, pathlen, prefix, key);
	*out = NULL;
	if (!json_object_object_get_ex(obj, key, out) || !*out) {
		*out = NULL;
		if (required)
			return api_fail(err, errlen, "%s: missing (required)", path);
		return 1;
	}
	return 0;
}

int api_json_string(json_object *obj, const char *prefix, const char *key, bool required,
		    const char **out, char *err, size_t errlen)
{
	char path[256];
	json_object *v;
	int ret = api_json_member(obj, prefix, key, required, &v, path, sizeof(path), err, errlen);

	if (ret)
		return ret;
	if (!json_object_is_type(v, json_type_string))
		return api_fail(err, errlen, "%s: must be a string", path);
	*out = json_object_get_string(v);
	if (strlen(*out) != (size_t)json_object_get_string_len(v))
		return api_fail(err, errlen, "%s: must not contain NUL characters", path);
	return 0;
}

int api_json_bool(json_object *obj, const char *prefix, const char *key, bool required, bool *out,
		  char *err, size_t errlen)
{
	char path[256];
	json_object *v;
	int ret = api_json_member(obj, prefix, key, required, &v, path, sizeof(path), err, errlen);

	if (ret)
		return ret;
	if (!json_object_is_type(v, json_type_boolean))
		return api_fail(err, errlen, "%s: must be true or false", path);
	*out = json_object_get_boolean(v);
	return 0;
}

int api_json_int(json_object *obj, const char *prefix, const char *key, bool required, int64_t *out,
		 char *err, size_t errlen)
{
	char path[256];
	json_object *v;
	int ret = api_json_member(obj, prefix, key, required, &v, path, sizeof(path), err, errlen);

	if (ret)
		return ret;
	if (!json_object_is_type(v, json_type_int))
		return api_fail(err, errlen, "%s: must be an integer", path);
	errno = 0;
	*out = json_object_get_int64(v);
	if (errno || *out == INT64_MAX)
		*out = INT64_MAX; /* json-c saturates: an out-of-range value stays out of range */
	return 0;
}
