/* Long double arithmetic for INCRBYFLOAT/HINCRBYFLOAT and blocking commands' timeouts.
 *
 * Redis adds these increments as C `long double` (80-bit on x86-64) and prints the
 * result with "%.17Lf" minus trailing zeroes, so `SET k 0.1` + `INCRBYFLOAT k 0.2` gives
 * "0.3", not the "0.30000000000000004" of 64-bit doubles. Rust has no long double, so
 * these few lines are C: the libc's own strtold/snprintf give the exact same results as
 * Redis on the same platform. Inputs and outputs are strings, so nothing else crosses
 * the boundary. */

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LD_MAX_CHARS (5 * 1024)

/* Redis's string2ld rules: the whole string, no leading space, no NaN, no overflow. */
static int parse_ld(const char *s, size_t len, long double *out) {
    char buf[LD_MAX_CHARS];
    char *end;
    long double v;

    if (len == 0 || len >= sizeof(buf)) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    v = strtold(buf, &end);
    if (isspace((unsigned char)buf[0]) || *end != '\0' || (size_t)(end - buf) != len ||
        (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)) ||
        errno == EINVAL || isnan(v))
        return 0;
    *out = v;
    return 1;
}

/* Returns the length written to `out`, or -1 (a invalid), -2 (b invalid),
 * -3 (NaN or infinite result), -4 (no room). */
long ferrokv_ld_add_human(const char *a, size_t alen, const char *b, size_t blen, char *out, size_t outlen) {
    long double x, y, r;
    int n;

    if (!parse_ld(a, alen, &x)) return -1;
    if (!parse_ld(b, blen, &y)) return -2;
    r = x + y;
    if (isnan(r) || isinf(r)) return -3;
    n = snprintf(out, outlen, "%.17Lf", r);
    if (n < 0 || (size_t)n + 1 > outlen) return -4;
    if (strchr(out, '.') != NULL) {
        while (n > 0 && out[n - 1] == '0') n--;
        if (n > 0 && out[n - 1] == '.') n--;
    }
    if (n == 2 && out[0] == '-' && out[1] == '0') {
        out[0] = '0';
        n = 1;
    }
    out[n] = '\0';
    return n;
}

/* A blocking command's timeout in seconds, as Redis computes it: `(long long)
 * ceill(seconds * 1000.0)` in long double. The 64-bit mantissa matters: 0.253 s waits
 * 254 ms there (0.253L * 1000 lies just above 253), and 1e309 or 1e-400 are valid
 * numbers. Returns 0 with the milliseconds in *ms, -1 if the text is not a float, -2 if
 * the result is negative. A product beyond long long's range is -2 as well: converting
 * it is undefined in C and gives LLONG_MIN on x86, where Redis reports it as negative;
 * the range is checked here rather than relying on that conversion. */
int ferrokv_ld_timeout_ms(const char *s, size_t len, long long *ms) {
    long double v, t;

    if (!parse_ld(s, len, &v)) return -1;
    t = ceill(v * 1000.0);
    if (!(t >= -9223372036854775808.0L && t < 9223372036854775808.0L)) return -2;
    *ms = (long long)t;
    return *ms < 0 ? -2 : 0;
}
