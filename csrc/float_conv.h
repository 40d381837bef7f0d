/* float_conv.h - Lua-free, locale-free conversions between binary64 doubles
 * and decimal digits: correctly rounded decimal -> double (Eisel-Lemire style,
 * with a bracket that says when it cannot decide) and the shortest decimal of
 * a double (Schubfach). */
#ifndef DS_FLOAT_CONV_H
#define DS_FLOAT_CONV_H

#include <stdint.h>

#pragma GCC visibility push(hidden)

/* w * 10^q rounded to nearest, ties to even, for w > 0. 1 and *out set when
 * the result is a normal double decided here; 0 when it is not normal or too
 * close to a halfway point to decide (rare: the caller then uses strtod). */
int ds_digits_to_double(uint64_t w, int q, double *out);

/* The shortest decimal digits * 10^exp10 that reads back as v (finite, > 0),
 * the nearest to v of those, ties to an even last digit: what ECMAScript's
 * Number::toString and Python's repr print. digits has no trailing zeros. */
void ds_double_shortest(double v, uint64_t *digits, int *exp10);

#pragma GCC visibility pop

#endif
