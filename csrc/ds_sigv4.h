/* ds_sigv4.h - the binding of sigv4.c: core.signer, sha256, hmac, hex. */
#ifndef DS_SIGV4_BINDING_H
#define DS_SIGV4_BINDING_H

#include "ds.h"

/* Adds signer, sha256_hex, hmac_sha256, hex and sigv4_signing_key to the
 * table at the top of the stack. [-0, +0] */
DS_HIDDEN void ds_open_sigv4(lua_State *L);

#endif
