/*
 * cli_rekey.c - `shalefs rekey`: wrap an encrypted store's data key with a
 * new master key (docs/encryption.md). Only the key object changes, so it
 * takes seconds whatever the store's size, and a mount of the store goes
 * on working (it holds the data key, which stays the same).
 *
 *   shalefs rekey -o key_file=OLD|passphrase_file=OLD
 *                 --new-key-file=NEW|--new-passphrase-file=NEW STORE
 *
 * Exit codes: 0 success, 1 failure (one line naming the cause).
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int cli_rekey(int argc, char **argv)
{
	struct obj_crypt_config oldk = { 0 }, newk = { 0 };
	struct obj_backend *store = NULL;
	struct cli_opts *o = NULL, plain;
	int code = 1, rc;

	rc = cli_parse_store_args(argc, argv, NULL, &o);
	if (rc)
		return rc > 0 ? 0 : 1;
	if (cli_only_flags(o, CLI_F_NEWKEY, "rekey"))
		goto out;
	if (!o->key_file && !o->passphrase_file) {
		cli_err("rekey needs the current key: -o key_file=PATH or -o passphrase_file=PATH");
		goto out;
	}
	if (!o->new_key_file && !o->new_passphrase_file) {
		cli_err("rekey needs the new key: --new-key-file=PATH or --new-passphrase-file=PATH");
		goto out;
	}
	oldk.key_file = o->key_file;
	oldk.passphrase_file = o->passphrase_file;
	newk.key_file = o->new_key_file;
	newk.passphrase_file = o->new_passphrase_file;
	/* The key object is read and written beside the crypt layer. */
	plain = *o;
	plain.key_file = NULL;
	plain.passphrase_file = NULL;
	cli_quiet(1);
	if (cli_open_store(&plain, 1, &store)) {
		cli_quiet(0);
		goto out;                       /* printed */
	}
	rc = obj_crypt_rekey(store, &oldk, &newk);
	cli_quiet(0);
	if (rc == -EKEYREJECTED) {
		cli_err("wrong key for encrypted store %s (%s)", o->store, obj_last_error());
		goto out;
	}
	if (rc == -ENOKEY) {
		cli_err("store %s is not encrypted (it has no key object): nothing to rekey",
			o->store);
		goto out;
	}
	if (rc) {
		cli_err("rekey of %s failed: %s", o->store,
			*obj_last_error() ? obj_last_error() : strerror(-rc));
		goto out;
	}
	printf("shalefs: %s now opens with the new key; the old key no longer does\n", o->store);
	code = fflush(stdout) == 0 ? 0 : 1;
out:
	obj_close(store);
	cli_opts_release(o);
	return code;
}
