/* t-template-steps.c - E2B's template steps as a Dockerfile the builder
 * parses, bad steps refused by name, Dockerfiles as steps, filesHash. */
#include "tap.h"
#include "dockerfile.h"
#include "fsutil.h"
#include "template-steps.h"

#include <sys/stat.h>

static const char *H = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static int plan(const char *json, struct e2b_steps_plan *p, struct e2b_error **err)
{
    json_t *j = json_loads(json, 0, NULL);
    int r = e2b_steps_plan(j, p, err);
    json_decref(j);
    return r;
}

static void bad(const char *json, const char *want, const char *name)
{
    struct e2b_steps_plan p;
    struct e2b_error *err = NULL;
    ok(plan(json, &p, &err) < 0 && err && strstr(err->msg, want), "%s: %s", name,
       err ? err->msg : "accepted");
    e2b_error_free(err);
}

int main(void)
{
    struct e2b_steps_plan p;
    struct e2b_error *err = NULL;
    char *body = NULL;
    if (asprintf(
            &body,
            "{\"fromImage\": \"oci:/x:1\", \"startCmd\": \"s\", \"steps\": ["
            "{\"type\": \"RUN\", \"args\": [\"echo \\\"a\\\"\\nb $HOME\"]},"
            "{\"type\": \"RUN\", \"args\": [\"apt-get update\", \"root\"]},"
            "{\"type\": \"COPY\", \"args\": [\"app\", \"/app\", \"\", \"0750\"], \"filesHash\": \"%s\"},"
            "{\"type\": \"ENV\", \"args\": [\"A\", \"x \\\"y\\\" $B\", \"C\", \"\"], \"force\": true},"
            "{\"type\": \"WORKDIR\", \"args\": [\"/srv/app\"]},"
            "{\"type\": \"USER\", \"args\": [\"guest\"]},"
            "{\"type\": \"COPY\", \"args\": [\"a b$c\", \"rel\", \"bob\"], \"filesHash\": \"%s\"}]}",
            H, H) < 0)
        return 1;
    ok(plan(body, &p, &err) == 0, "a plan: %s", err ? err->msg : "");
    free(body);
    diag("%s", p.dockerfile ? p.dockerfile : "");
    is_int(p.n_steps, 7, "seven steps");
    is_int(p.n_labels, 11, "one label per instruction");
    is_str(p.labels[0], "base", "FROM is base");
    is_str(p.labels[1], "base", "USER user is base");
    is_str(p.labels[3], "2", "RUN as root: USER root");
    is_str(p.labels[5], "2", "and back");
    is_int(p.force_from, 8, "force from the ENV step's instruction");
    ok(strstr(p.dockerfile,
              "USER root\nRUN [\"/bin/sh\", \"-c\", \"apt-get update\"]\nUSER user\n") != NULL,
       "a RUN's user around it");
    ok(strstr(p.dockerfile, "COPY --chown=user:user --chmod=0750 [\"") != NULL,
       "owner: the current user");
    ok(strstr(p.dockerfile, "COPY --chown=bob:bob [\"") != NULL, "an owner without group");
    is_int(e2b_strv_len(p.copies), 2, "two COPY steps");
    /* the builder's own parser reads it back */
    struct e2b_dockerfile *df = NULL;
    struct e2b_build_args ba = { 0 };
    ok(e2b_dockerfile_parse("gen", p.dockerfile, strlen(p.dockerfile), &ba, &df, &err) == 0,
       "parses: %s", err ? err->msg : "");
    if (df) {
        const struct e2b_df_stage *sg = &df->stages[0];
        is_int(sg->n_instrs, 11, "every instruction");
        is_str(sg->instrs[2].args[2], "echo \"a\"\nb $HOME",
               "RUN kept as written, line break included");
        const struct e2b_df_instr *cp = &sg->instrs[6];
        is_str(cp->args[0], "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/app",
               "COPY from <hash>/<src>");
        is_str(cp->args[1], "/app", "to dest");
        is_str(e2b_df_flag(cp, "chmod", NULL), "0750", "mode");
        const struct e2b_df_instr *env = &sg->instrs[7];
        is_str(env->kvs[0].value, "x \"y\" ", "ENV value: quotes kept, $B expanded (unset)");
        const struct e2b_df_instr *cp2 = &sg->instrs[10];
        ok(strstr(cp2->args[0], "/a b$c") != NULL, "COPY path: $ and blanks kept: %s",
           cp2->args[0]);
        e2b_dockerfile_free(df);
    }
    e2b_steps_plan_free(&p);
    e2b_error_free(err);
    err = NULL;

    ok(plan("{\"fromTemplate\": \"host\", \"steps\": []}", &p, &err) == 0, "fromTemplate");
    ok(strstr(p.dockerfile, "FROM e2b-template:host\n") != NULL, "as e2b-template:");
    is_str(p.from_template, "host", "named");
    e2b_steps_plan_free(&p);

    bad("{\"steps\": []}", "exactly one of fromImage and fromTemplate", "no base");
    bad("{\"fromImage\": \"a\", \"fromTemplate\": \"b\"}", "exactly one", "two bases");
    bad("{\"fromImage\": \"a\", \"steps\": [{\"type\": \"FROBNICATE\", \"args\": []}]}",
        "step 1: unknown step type 'FROBNICATE'", "unknown type");
    bad("{\"fromImage\": \"a\", \"steps\": [{\"type\": \"COPY\", \"args\": [\"a\", \"/b\"]}]}",
        "filesHash", "COPY without hash");
    bad("{\"fromImage\": \"a\", \"steps\": [{\"type\": \"RUN\", \"args\": [\"a\"]}, {\"type\": \"COPY\", "
        "\"args\": [\"../etc\", \"/b\"], \"filesHash\": \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
        "abcdef\"}]}",
        "step 2 (COPY): source '../etc'", "COPY out of the context");
    bad("{\"fromImage\": \"a\", \"steps\": [{\"type\": \"ENV\", \"args\": [\"A\"]}]}",
        "step 1 (ENV)", "odd ENV");
    bad("{\"fromImage\": \"a\", \"steps\": [{\"type\": \"ENV\", \"args\": [\"A B\", \"x\"]}]}",
        "invalid variable", "bad ENV key");
    bad("{\"fromImage\": \"a\", \"steps\": [{\"type\": \"USER\", \"args\": [\"a b\"]}]}",
        "step 1 (USER)", "bad user");
    bad("{\"fromImage\": \"a\", \"steps\": [{\"type\": \"RUN\", \"args\": [1]}]}",
        "array of strings", "not strings");
    bad("{\"fromImage\": \"a\\nRUN x\"}", "invalid base", "a line break in the base");
    bad("{\"fromImage\": \"debia'n:12\"}", "fromImage 'debia'n:12': cannot expand",
        "what FROM cannot read");
    bad("{\"fromImage\": \"a\", \"steps\": [{\"type\": \"RUN\", \"args\": [\"true\"]}, {\"type\": \"ENV\", "
        "\"args\": [\"A\", \"${B\"]}]}",
        "step 2: ", "an ENV value the builder cannot expand, named by its step");

    /* filesHash: what the SDK computes (tests/sdk checks the same against the SDK itself) */
    char tmpl[] = "/tmp/t-template-steps.XXXXXX";
    char *dir = mkdtemp(tmpl);
    ok(dir != NULL, "scratch dir");
    char path[512];
    snprintf(path, sizeof(path), "%s/app/sub", dir);
    e2b_mkdir_p(path, 0755, NULL);
    snprintf(path, sizeof(path), "%s/app/sub/x.txt", dir);
    e2b_write_file_atomic(path, "hi\n", 3, 0644, NULL);
    snprintf(path, sizeof(path), "%s/app/run.sh", dir);
    e2b_write_file_atomic(path, "#!/bin/sh\n", 10, 0755, NULL);
    char h1[65], h2[65];
    char **paths = NULL;
    bool dirs = false;
    ok(e2b_files_hash(dir, "app", "/app", NULL, h1, &paths, &dirs, &err) == 0,
       "hash of a directory");
    is_int(e2b_strv_len(paths), 4, "the directory and what is below it");
    is_str(paths[0], "app", "itself first");
    is_str(paths[1], "app/run.sh", "then in path order");
    ok(dirs, "directories among them");
    e2b_strv_free(paths);
    ok(e2b_files_hash(dir, "./app", "/app", NULL, h2, NULL, NULL, &err) == 0 && strcmp(h1, h2) != 0,
       "the source as written is hashed");
    ok(e2b_files_hash(dir, "app/sub/*.txt", "/x/", NULL, h2, &paths, &dirs, &err) == 0, "a glob");
    is_int(e2b_strv_len(paths), 1, "one match");
    ok(!dirs, "no directory");
    e2b_strv_free(paths);
    ok(e2b_files_hash(dir, "nothing", "/x", NULL, h2, NULL, NULL, &err) < 0 &&
           err->code == E2B_ERR_NOT_FOUND,
       "no match: not found");
    e2b_error_free(err);
    err = NULL;
    e2b_rm_rf(dir, NULL);
    return tap_done();
}
