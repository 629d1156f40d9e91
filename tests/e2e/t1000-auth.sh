#!/bin/sh
# e2b auth: keys checked before saving, config written 0600 atomically and
# left untouched by failures, never printed whole, bad config named.
. "$(dirname "$0")/test-lib.sh"

KEY=e2b_0123456789abcdef0123456789abcdef
cfg=$HOME/.e2b/config.json

start_api() { # name status [key]
    python3 "$SRC_DIR/tests/e2e/fake-api.py" "$TRASH/$1.port" "$2" ${3:-} >/dev/null 2>&1 &
    test_atexit "kill $!"
    wait_for 50 test -s "$TRASH/$1.port"
}
start_api refuse 401 && REFUSE=http://127.0.0.1:$(cat refuse.port)
start_api broken 500 && BROKEN=http://127.0.0.1:$(cat broken.port)
start_api accept 401 $KEY && ACCEPT=http://127.0.0.1:$(cat accept.port)
DEAD=http://127.0.0.1:$(free_port)

test_expect_success 'auth info when logged out' '
    e2b auth info > out && test_grep "Logged in: *false" out && test_grep "Backend: *local" out
'

test_expect_success 'login against an unreachable API fails and writes nothing' '
    test_expect_code 1 e2b auth login --api-key $KEY --api-url $DEAD 2>err &&
    test_grep "^e2b: cannot log in to $DEAD: cannot reach" err &&
    test ! -e "$cfg"
'

test_expect_success 'login with a refused key fails and writes nothing' '
    test_expect_code 1 e2b auth login --api-key $KEY --api-url $REFUSE 2>err &&
    test_grep "the API refused the key" err && test_grep "401" err &&
    test ! -e "$cfg"
'

test_expect_success 'login with a key the API accepts, from stdin' '
    echo $KEY | e2b auth login --with-api-key --api-url $ACCEPT 2>err &&
    test_grep "Logged in to $ACCEPT" err &&
    test "$(stat -c %a "$cfg")" = 600 && test "$(stat -c %a "$HOME/.e2b")" = 700 &&
    python3 -c "import json; c=json.load(open(\"$cfg\")); assert c[\"projectApiKey\"]==\"$KEY\" and c[\"version\"]==2 and c[\"apiUrl\"]==\"$ACCEPT\""
'

test_expect_success 'a refused login leaves the existing config untouched' '
    cp "$cfg" before &&
    test_must_fail e2b auth login --api-key e2b_ffff --api-url $REFUSE 2>err &&
    test_must_fail e2b auth login --api-key e2b_ffff --api-url $BROKEN 2>err2 &&
    test_grep "500 fake api says no" err2 &&
    test_cmp before "$cfg"
'

test_expect_success 'auth info shows the API and a masked key, never the whole key' '
    e2b auth info > out && test_grep "API key: *e2b_\*\*\*\*cdef" out &&
    test_grep "API URL: *$ACCEPT" out && test_grep "Backend: *remote" out &&
    test_grep -v "$KEY" out &&
    e2b auth info --json > out.json && test_grep -v "$KEY" out.json &&
    python3 -c "import json; d=json.load(open(\"out.json\")); assert d[\"loggedIn\"] and d[\"apiKeySource\"]==\"config\""
'

test_expect_success 'E2B_API_KEY wins over the stored key' '
    E2B_API_KEY=e2b_aaaa1111 e2b auth info --json > out.json &&
    test_grep "\"apiKeySource\": \"E2B_API_KEY\"" out.json
'

test_expect_success 'keys that do not look like E2B keys are refused' '
    test_expect_code 2 e2b auth login --api-key sk_nope --no-verify 2>err &&
    test_grep "e2b_<lowercase hex>" err
'

test_expect_success 'no key and no terminal: a usage error, not a hang' '
    test_expect_code 2 e2b auth login </dev/null 2>err && test_grep "no API key" err
'

test_expect_success '--no-verify stores without asking the API' '
    e2b auth login --api-key e2b_beef --api-url $DEAD --no-verify 2>err &&
    test_grep "\"projectApiKey\": \"e2b_beef\"" "$cfg"
'

test_expect_success 'auth configure sets and clears the default API' '
    e2b auth configure --domain example.test > out && test_grep "Domain: *example.test" out &&
    e2b auth configure --url http://127.0.0.1:9 --json > out.json &&
    test_grep "\"apiUrl\": \"http://127.0.0.1:9\"" out.json &&
    test_expect_code 2 e2b auth configure --url ftp://x 2>err && test_grep "http://" err &&
    e2b auth configure --local > out && test_grep -v "API URL" out &&
    test "$(stat -c %a "$cfg")" = 600
'

test_expect_success 'the envd URL is saved with its API, and only used with it' '
    e2b auth login --api-key $KEY --api-url $ACCEPT --sandbox-url http://127.0.0.1:7 2>err &&
    python3 -c "import json; c=json.load(open(\"$cfg\")); assert c[\"sandboxUrl\"]==\"http://127.0.0.1:7\" and c[\"apiUrl\"]==\"$ACCEPT\"" &&
    e2b auth info --json > out.json &&
    test_grep "\"sandboxUrl\": \"http://127.0.0.1:7\"" out.json && test_grep "\"sandboxUrlSource\": \"config\"" out.json &&
    E2B_API_URL=$ACCEPT e2b auth info --json > out.json && test_grep -v "127.0.0.1:7" out.json &&
    E2B_SANDBOX_URL=http://127.0.0.1:8 e2b auth info --json > out.json &&
    test_grep "\"sandboxUrlSource\": \"E2B_SANDBOX_URL\"" out.json &&
    e2b auth login --api-key $KEY --api-url $ACCEPT 2>err &&
    python3 -c "import json; c=json.load(open(\"$cfg\")); assert \"sandboxUrl\" not in c, c" &&
    test_expect_code 2 e2b auth login --api-key $KEY --sandbox-url ftp://x 2>err && test_grep "http://" err &&
    e2b auth configure --sandbox-url http://127.0.0.1:9 > out && test_grep "Sandbox URL: *http://127.0.0.1:9" out &&
    e2b auth configure --url http://127.0.0.1:10 --json > out.json && test_grep "\"sandboxUrl\": null" out.json &&
    test_expect_code 2 e2b auth configure --local --sandbox-url http://x 2>err
'

test_expect_success 'a config file with bad JSON: error names the file and line' '
    printf "{\n  \"projectApiKey\": \"e2b_1\",\n  oops\n}\n" > "$cfg" &&
    test_expect_code 1 e2b auth info 2>err &&
    test_grep "$cfg:3:" err && test_grep "bad JSON" err &&
    test_expect_code 1 e2b auth login --api-key $KEY --api-url $ACCEPT 2>err &&
    test_grep "$cfg:3:" err
'

test_expect_success 'logout removes the key' '
    echo "{\"projectApiKey\": \"$KEY\"}" > "$cfg" &&
    e2b auth logout 2>err && test_grep "Logged out" err && test ! -e "$cfg" &&
    e2b auth logout 2>err && test_grep "Not logged in" err
'

test_done
