/* t-opt.c - the option parser: long/short forms, =value, --, repeats, positionals. */
#include "opt.h"
#include "tap.h"

static const struct e2b_opt opts[] = {
    E2B_OPT_FLAG('d', "detach", "detach"),
    E2B_OPT_STRING('c', "cwd", "DIR", "cwd"),
    E2B_OPT_INT(0, "timeout", "SECONDS", "timeout"),
    E2B_OPT_LIST('e', "env", "K=V", "env"),
    E2B_OPT_ARG("id", E2B_OPTF_REQUIRED, "sandbox"),
    E2B_OPT_ARGS("command", E2B_OPTF_STOP, "command"),
    E2B_OPT_END,
};
static const struct e2b_opt globals[] = {
    E2B_OPT_FLAG(0, "json", "json"),
    E2B_OPT_FLAG('q', "quiet", "quiet"),
    E2B_OPT_END,
};

static int parse(struct e2b_args *a, struct e2b_error **err, int argc, char **argv)
{
    const struct e2b_opt *tables[] = {opts, globals, NULL};
    return e2b_args_parse(a, tables, argc, argv, err);
}

int main(void)
{
    struct e2b_args a;
    struct e2b_error *err = NULL;

    char *v1[] = {"-dq", "--cwd=/tmp", "-e", "A=1", "-eB=2", "--env", "C=3", "--timeout", "30",
                  "--json", "sbx1", "ls", "-la", "--json"};
    ok(parse(&a, &err, 14, v1) == 0, "mixed options parse");
    ok(e2b_args_flag(&a, "detach") && e2b_args_flag(&a, "quiet"), "combined short flags");
    is_str(e2b_args_str(&a, "cwd"), "/tmp", "--opt=value");
    is_int(e2b_args_int(&a, "timeout", -1), 30, "integer option");
    size_t n;
    const char *const *env = e2b_args_list(&a, "env", &n);
    is_int(n, 3, "repeated option keeps all values");
    is_str(env[1], "B=2", "-eVALUE form");
    is_str(e2b_args_str(&a, "id"), "sbx1", "positional");
    const char *const *cmd = e2b_args_list(&a, "command", &n);
    is_int(n, 3, "options stop at the command");
    is_str(cmd[1], "-la", "command's own options kept");
    ok(e2b_args_flag(&a, "json"), "global option before the command");
    e2b_args_release(&a);

    char *v2[] = {"--nosuch"};
    ok(parse(&a, &err, 1, v2) < 0 && err->code == E2B_ERR_USAGE, "unknown option is a usage error");
    is_str(err->msg, "unknown option '--nosuch'", "error names the option");
    e2b_error_free(err), err = NULL;
    e2b_args_release(&a);

    char *v3[] = {"--timeout", "soon", "x"};
    ok(parse(&a, &err, 3, v3) < 0, "non-numeric integer refused");
    ok(err && strstr(err->msg, "'soon'"), "error quotes the value");
    e2b_error_free(err), err = NULL;
    e2b_args_release(&a);

    char *v4[] = {"-d"};
    ok(parse(&a, &err, 1, v4) < 0 && strstr(err->msg, "missing argument <id>"), "missing required positional");
    e2b_error_free(err), err = NULL;
    e2b_args_release(&a);

    char *v5[] = {"--cwd"};
    ok(parse(&a, &err, 1, v5) < 0 && strstr(err->msg, "needs a value"), "option without its value");
    e2b_error_free(err), err = NULL;
    e2b_args_release(&a);

    char *v6[] = {"--detach=yes", "x"};
    ok(parse(&a, &err, 2, v6) < 0 && strstr(err->msg, "takes no value"), "flag given a value");
    e2b_error_free(err), err = NULL;
    e2b_args_release(&a);

    char *v7[] = {"--", "-x", "-y"};
    ok(parse(&a, &err, 3, v7) == 0, "-- ends options");
    is_str(e2b_args_str(&a, "id"), "-x", "-- makes a dash word positional");
    e2b_args_release(&a);

    char *v8[] = {"x", "--help"};
    ok(parse(&a, &err, 2, v8) == 0 && a.help, "--help recognised");
    e2b_args_release(&a);

    _cleanup_free_ char *label = e2b_opt_label(&opts[1]);
    is_str(label, "-c, --cwd DIR", "help label");
    _cleanup_free_ char *pos = e2b_opt_positionals(opts);
    is_str(pos, "<id> [command]...", "positional synopsis");
    return tap_done();
}
