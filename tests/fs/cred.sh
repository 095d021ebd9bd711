#!/bin/sh
# cred.sh - every source of the S3 credential chain mounts the RGW rig and
# writes and reads a file (after a remount, so the bytes came back from
# RGW), with a user and bucket of its own (needs SHALE_RGW_DIR for
# radosgw-admin):
#   environment, -o credentials_file=, a profile's static keys, its
#   credential_process, role_arn + source_profile (STS AssumeRole, signed),
#   web identity (STS AssumeRoleWithWebIdentity), ECS, EC2 IMDSv2.
# STS, ECS, IMDS and the process are played by tests/fs/cred_fake.py, which
# hands out fresh RGW keys with an Expiration and deletes them from RGW
# when they expire. Then:
#   * refresh: keys that live 5 s, a 30 s write/fsync/read workload, no
#     failed request, several keys issued, expired ones refused by RGW;
#   * a key revoked before its Expiration: the refused request refreshes
#     the credentials and is sent again, without an error;
#   * the session token is sent and signed (a logging proxy in front of RGW);
#   * no_sign_request on a public bucket: no Authorization header at all;
#   * credentials_file with mode 0644 is refused, naming the file;
#   * nothing found: "no S3 credentials found", listing what was tried, fast;
#   * no secret or token handed out ever appears in a daemon's log file.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup cred
if [ -z "$(fs_s3_store probe)" ] || [ -z "${SHALE_RGW_DIR:-}" ]; then
	echo "SKIP: needs the S3 rig (tests/rig/rgw-start) and SHALE_RGW_DIR"
	exit 77
fi
HERE=${SHALE_SRCDIR:-.}/tests/fs
RGWA="radosgw-admin -c $SHALE_RGW_DIR/ceph.conf"
U=cred$$ K=credkey$$ S=credsecret$$ B=cred$$ PB=credpub$$
ENDPOINT=$SHALE_S3_ENDPOINT
EMPTY_SHA=$(printf '' | sha256sum | cut -d' ' -f1)
$RGWA user create --uid="$U" --display-name="$U" --access-key="$K" --secret-key="$S" >/dev/null
mkdir -p "$FS_TMP/home" "$FS_TMP/logs"
umask 077
printf 'user = "%s:%s"\n' "$K" "$S" >"$FS_TMP/curl.cfg"
umask 022
s3curl() { curl -sS -K "$FS_TMP/curl.cfg" --aws-sigv4 "aws:amz:us-east-1:s3" "$@"; }
s3curl -f -o /dev/null -H "x-amz-content-sha256: $EMPTY_SHA" -X PUT "$ENDPOINT/$B" || fs_die "creating bucket $B"

FAKE_PIDS=""
cleanup_all() {
	for p in $FAKE_PIDS; do kill "$p" 2>/dev/null || true; done
	$RGWA user rm --uid="$U" --purge-data >/dev/null 2>&1 || true
	fs_cleanup
}
trap cleanup_all EXIT

# The fakes get what they check through their environment, never argv.
export CRED_FAKE_RGWA="$RGWA" CRED_FAKE_SOURCE_KEY=$K CRED_FAKE_SOURCE_SECRET=$S
CRED_FAKE_JWT="jwt-$$-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
CRED_FAKE_ECS_AUTH="ecs-$$-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export CRED_FAKE_JWT CRED_FAKE_ECS_AUTH
start_fake() { # MODE NAME ARG: sets PORT
	python3 "$HERE/cred_fake.py" "$1" "$FS_TMP/$2.port" "$FS_TMP/$2.log" "$3" &
	FAKE_PIDS="$FAKE_PIDS $!"
	i=0
	while [ ! -s "$FS_TMP/$2.port" ]; do
		i=$((i + 1)); [ $i -lt 100 ] || fs_die "cred_fake.py $1 did not start"; sleep 0.1
	done
	PORT=$(cat "$FS_TMP/$2.port")
}
start_fake serve fake "$U"
FAKE=http://127.0.0.1:$PORT
start_fake proxy proxy "$ENDPOINT"
PROXY=http://127.0.0.1:$PORT
printf '%s\n%s\n%s\n' "$S" "$CRED_FAKE_JWT" "$CRED_FAKE_ECS_AUTH" >"$FS_TMP/permanent.secrets"

# No ambient credentials from here on: each case sets only its own.
clear_aws() {
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE \
		AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN \
		AWS_ROLE_SESSION_NAME AWS_ENDPOINT_URL_STS AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
		AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN \
		AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE AWS_EC2_METADATA_SERVICE_ENDPOINT
	export HOME="$FS_TMP/home" AWS_EC2_METADATA_DISABLED=true
}
clear_aws

# round NAME EXTRA_OPTS [ENDPOINT]: format, mount, write 1 MiB, fsync,
# unmount, mount again, read it back.
round() {
	name=$1 extra=$2 ep=${3:-$ENDPOINT}
	st="s3://$B/$name" mnt=$FS_TMP/mnt-$name
	o="endpoint=$ep,path_style,region=us-east-1${extra:+,$extra}"
	lo="$o,log_file=$FS_TMP/logs/$name.log,log_level=debug"
	fs_format "$st" -o "$o"
	head -c 1M /dev/urandom >"$FS_TMP/data-$name"
	fs_mount "$st" "$mnt" -o "$lo"
	cp "$FS_TMP/data-$name" "$mnt/f"
	sync "$mnt/f" || fs_die "$name: fsync failed"
	fs_umount "$mnt"
	fs_mount "$st" "$mnt" -o "$lo"
	cmp -s "$FS_TMP/data-$name" "$mnt/f" || fs_die "$name: the file read back differs"
	fs_umount "$mnt"
	grep -q "credentials: " "$FS_TMP/logs/$name.log" || fs_die "$name: the log does not name the credential source"
	echo "cred: $name: $(sed -n 's/.*(.*credentials: \(.*\))$/\1/p' "$FS_TMP/logs/$name.log" | tail -n 1)"
}

# --- 1. the environment
AWS_ACCESS_KEY_ID=$K AWS_SECRET_ACCESS_KEY=$S
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
round env ""
clear_aws

# --- 0. -o credentials_file= (and its mode check)
printf '# shalefs test\n%s:%s\n' "$K" "$S" >"$FS_TMP/passwd"
chmod 644 "$FS_TMP/passwd"
if "$SHALEFS" format -o "endpoint=$ENDPOINT,path_style,credentials_file=$FS_TMP/passwd" \
	"s3://$B/refused" >"$FS_TMP/refused.out" 2>&1; then
	fs_die "a credentials file of mode 0644 was accepted"
fi
grep -q "credentials file $FS_TMP/passwd is accessible by group or others" "$FS_TMP/refused.out" ||
	{ cat "$FS_TMP/refused.out" >&2; fs_die "the refusal of a 0644 credentials file does not say why"; }
grep -qF "$S" "$FS_TMP/refused.out" && fs_die "the refusal shows the secret"
chmod 600 "$FS_TMP/passwd"
round passwd "credentials_file=$FS_TMP/passwd"

# --- 3. a profile: static keys, credential_process, role_arn + source_profile
cat >"$FS_TMP/aws-credentials" <<EOF
[static]
aws_access_key_id = $K
aws_secret_access_key = $S
[src]
aws_access_key_id = $K
aws_secret_access_key = $S
EOF
cat >"$FS_TMP/aws-config" <<EOF
[profile proc]
credential_process = curl -sf $FAKE/process
[profile role]
role_arn = arn:aws:iam::123456789012:role/shale
source_profile = src
role_session_name = cred-test
EOF
chmod 600 "$FS_TMP/aws-credentials"
export AWS_SHARED_CREDENTIALS_FILE="$FS_TMP/aws-credentials" AWS_CONFIG_FILE="$FS_TMP/aws-config"
round profile "profile=static"
round process "profile=proc"
AWS_ENDPOINT_URL_STS=$FAKE AWS_PROFILE=role
export AWS_ENDPOINT_URL_STS AWS_PROFILE
round assume ""
clear_aws

# --- 2. web identity
printf '%s\n' "$CRED_FAKE_JWT" >"$FS_TMP/jwt"
AWS_WEB_IDENTITY_TOKEN_FILE=$FS_TMP/jwt AWS_ROLE_ARN=arn:aws:iam::123456789012:role/web AWS_ENDPOINT_URL_STS=$FAKE
export AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN AWS_ENDPOINT_URL_STS
round web ""
clear_aws

# --- 4. ECS
printf '%s\n' "$CRED_FAKE_ECS_AUTH" >"$FS_TMP/ecs-token"
AWS_CONTAINER_CREDENTIALS_FULL_URI=$FAKE/ecs/creds AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=$FS_TMP/ecs-token
export AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
round ecs ""
clear_aws

# --- 5. EC2 IMDSv2, through the logging proxy: the token is sent and signed
unset AWS_EC2_METADATA_DISABLED
export AWS_EC2_METADATA_SERVICE_ENDPOINT="$FAKE"
: >"$FS_TMP/proxy.log"
round imds "" "$PROXY"
signed=$(grep -c 'auth=yes token=imds token_signed=yes' "$FS_TMP/proxy.log" || true)
other=$(grep 'REQ ' "$FS_TMP/proxy.log" | grep -vc 'auth=yes token=imds token_signed=yes' || true)
if [ "$signed" -eq 0 ] || [ "$other" != 0 ]; then
	tail -n 5 "$FS_TMP/proxy.log" >&2
	fs_die "imds: $signed requests carried the signed session token, $other did not"
fi
echo "cred: imds: all $signed requests carried X-Amz-Security-Token, signed"
for k in imds ecs web assume process; do
	n=$(curl -sf "$FAKE/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["by_kind"].get(sys.argv[1], 0))' "$k")
	[ "$n" -gt 0 ] || fs_die "the fake issued no $k credentials"
done

# --- refresh: 5-second keys under a 30 s workload
curl -sf "$FAKE/control/lifetime/5" >/dev/null
before=$(curl -sf "$FAKE/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["by_kind"]["imds"])')
st="s3://$B/refresh" mnt=$FS_TMP/mnt-refresh
o="endpoint=$PROXY,path_style,region=us-east-1"
fs_format "$st" -o "$o"
: >"$FS_TMP/proxy.log"
fs_mount "$st" "$mnt" -o "$o,log_file=$FS_TMP/logs/refresh.log,log_level=info"
end=$(($(date +%s) + 30)) i=0
while [ "$(date +%s)" -lt "$end" ]; do
	head -c 64K /dev/urandom >"$FS_TMP/w"
	cp "$FS_TMP/w" "$mnt/w$i" || fs_die "refresh: write $i failed"
	sync "$mnt/w$i" || fs_die "refresh: fsync $i failed"
	cmp -s "$FS_TMP/w" "$mnt/w$i" || fs_die "refresh: w$i reads back wrong"
	ls "$mnt" >/dev/null || fs_die "refresh: readdir failed"
	i=$((i + 1))
done
fs_stat "$mnt" s3_cred_refreshes >"$FS_TMP/refreshes"
for k in s3_cred_refresh_failures s3_cred_auth_retries objstore_failures objstore_retries; do
	v=$(fs_stat "$mnt" "$k")
	[ "$v" = 0 ] || fs_die "refresh: $k is '$v', expected 0"
done
fs_umount "$mnt"
fs_mount "$st" "$mnt" -o "$o"
n=0
while [ $n -lt $i ]; do
	[ -s "$mnt/w$n" ] || fs_die "refresh: w$n lost after the remount"
	n=$((n + 1))
done
fs_umount "$mnt"
after=$(curl -sf "$FAKE/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["by_kind"]["imds"])')
deleted=$(curl -sf "$FAKE/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["deleted"])')
refreshes=$(cat "$FS_TMP/refreshes")
bad=$(grep 'REQ ' "$FS_TMP/proxy.log" | grep -c 'status=403' || true)
[ "$bad" = 0 ] || fs_die "refresh: $bad requests were refused (403)"
[ $((after - before)) -ge 6 ] && [ "$refreshes" -ge 5 ] ||
	fs_die "refresh: $((after - before)) keys issued, $refreshes refreshes in 30 s of 5-second keys"
[ "$deleted" -ge 5 ] || fs_die "refresh: only $deleted expired keys were deleted"
grep -q "refreshed (valid until" "$FS_TMP/logs/refresh.log" || fs_die "refresh: not logged"
echo "cred: refresh: $i write+fsync+read rounds in 30 s, $refreshes refreshes, $((after - before)) keys issued, $deleted expired keys deleted, no request refused"
# An expired key really is refused: RGW no longer knows it.
old=$(grep ' DELETE ' "$FS_TMP/fake.log" | head -n 1 | awk '{print $3}')
sk=$(awk -v k="$old" '$1 == k { print $2 }' "$FS_TMP/fake.log.keys")
code=$(curl -s -o /dev/null -w '%{http_code}' --user "$old:$sk" --aws-sigv4 "aws:amz:us-east-1:s3" \
	-H "x-amz-content-sha256: $EMPTY_SHA" "$ENDPOINT/$B?list-type=2")
[ "$code" = 403 ] || fs_die "an expired key still works (HTTP $code)"

# --- a key revoked before its Expiration: refused once, refreshed, sent again
curl -sf "$FAKE/control/lifetime/300" >/dev/null
st="s3://$B/revoke" mnt=$FS_TMP/mnt-revoke
o="endpoint=$ENDPOINT,path_style,region=us-east-1"
fs_format "$st" -o "$o"
fs_mount "$st" "$mnt" -o "$o,log_file=$FS_TMP/logs/revoke.log,log_level=info"
echo before >"$mnt/a"
sync "$mnt/a" || fs_die "revoke: first fsync failed"
revoked=$(curl -sf "$FAKE/control/revoke")
[ -n "$revoked" ] || fs_die "revoke: no live key to revoke"
# RGW answers AccessDenied for a key removed a moment ago while its caches
# catch up, and InvalidAccessKeyId once they have: wait for the latter,
# which is what S3 says of a revoked key.
for old in $revoked; do
	sk=$(awk -v k="$old" '$1 == k { print $2 }' "$FS_TMP/fake.log.keys")
	n=0
	until curl -s --user "$old:$sk" --aws-sigv4 "aws:amz:us-east-1:s3" -H "x-amz-content-sha256: $EMPTY_SHA" \
		"$ENDPOINT/$B?list-type=2&max-keys=1" | grep -q InvalidAccessKeyId; do
		n=$((n + 1)); [ $n -lt 100 ] || fs_die "revoke: RGW still does not call $old invalid"; sleep 0.1
	done
done
echo after >"$mnt/b"
sync "$mnt/b" || fs_die "revoke: fsync after the revocation failed"
[ "$(fs_stat "$mnt" s3_cred_auth_retries)" -ge 1 ] || fs_die "revoke: no request was retried with new credentials"
[ "$(fs_stat "$mnt" objstore_failures)" = 0 ] || fs_die "revoke: a request failed"
fs_umount "$mnt"
grep -q "sending it again with refreshed credentials" "$FS_TMP/logs/revoke.log" || fs_die "revoke: the retry is not logged"
echo "cred: revoke: a refused key was refreshed and the request sent again"
unset AWS_EC2_METADATA_SERVICE_ENDPOINT
clear_aws

# --- no_sign_request on a public bucket: not one request signed
# (RGW answers an anonymous GET of a missing key 403 under a public-read-write
# ACL; a bucket policy granting everyone s3:* gives the 404 the engine needs.)
s3curl -f -o /dev/null -H "x-amz-content-sha256: $EMPTY_SHA" -X PUT "$ENDPOINT/$PB" ||
	fs_die "creating the public bucket"
POLICY='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:*"],"Resource":["arn:aws:s3:::'$PB'","arn:aws:s3:::'$PB'/*"]}]}'
s3curl -f -o /dev/null -H "x-amz-content-sha256: $(printf '%s' "$POLICY" | sha256sum | cut -d' ' -f1)" \
	-X PUT --data-binary "$POLICY" "$ENDPOINT/$PB?policy=" || fs_die "making the bucket public"
: >"$FS_TMP/proxy.log"
st="s3://$PB/pub" mnt=$FS_TMP/mnt-pub
o="endpoint=$PROXY,path_style,region=us-east-1,no_sign_request"
fs_format "$st" -o "$o"
fs_mount "$st" "$mnt" -o "$o,log_file=$FS_TMP/logs/pub.log"
echo public >"$mnt/f"
sync "$mnt/f" || fs_die "no_sign_request: fsync failed"
fs_umount "$mnt"
fs_mount "$st" "$mnt" -o "$o"
[ "$(cat "$mnt/f")" = public ] || fs_die "no_sign_request: the file reads back wrong"
fs_umount "$mnt"
unsigned=$(grep -c 'REQ .* auth=no ' "$FS_TMP/proxy.log" || true)
signedn=$(grep -c 'REQ .* auth=yes ' "$FS_TMP/proxy.log" || true)
[ "$unsigned" -gt 0 ] && [ "$signedn" = 0 ] || fs_die "no_sign_request: $signedn signed requests"
echo "cred: no_sign_request: $unsigned requests, none with an Authorization header"

# --- nothing found: a clear message, fast (IMDS at a closed port)
unset AWS_EC2_METADATA_DISABLED
export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1
t0=$(date +%s)
if "$SHALEFS" format -o "endpoint=$ENDPOINT,path_style" "s3://$B/none" >"$FS_TMP/none.out" 2>&1; then
	fs_die "format without credentials succeeded"
fi
t1=$(date +%s)
grep -q "no S3 credentials found; tried environment" "$FS_TMP/none.out" &&
	grep -q "EC2 instance metadata (http://127.0.0.1:1" "$FS_TMP/none.out" ||
	{ cat "$FS_TMP/none.out" >&2; fs_die "no credentials: the message does not list what was tried"; }
[ $((t1 - t0)) -le 10 ] || fs_die "no credentials: took $((t1 - t0)) s"
clear_aws

# --- no secret handed out, nor the permanent ones, in any log
cat "$FS_TMP/permanent.secrets" "$FS_TMP/fake.log.secrets" >"$FS_TMP/all.secrets"
if grep -rF -f "$FS_TMP/all.secrets" "$FS_TMP/logs" "$FS_TMP/daemon.log" >/dev/null; then
	fs_die "a secret or token appears in a daemon log"
fi
echo "cred: $(wc -l <"$FS_TMP/all.secrets") secrets and tokens, none in $(ls "$FS_TMP/logs" | wc -l) log files"
echo "cred: every source mounted; refresh, token, no_sign_request, mode check, no-credentials message OK"
