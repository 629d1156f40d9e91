/* t-dockerfile.c - the Dockerfile parser: syntax, expansion, stages, errors. */
#include "dockerfile.h"
#include "dockerfile-expand.h"
#include "strbuf.h"
#include "tap.h"

static struct e2b_dockerfile *parse_ba(const char *text, const char *const *ba, size_t nba)
{
    struct e2b_build_args args = {.args = ba, .n_args = nba, .target_platform = "linux/arm64/v8",
                                  .build_platform = "linux/amd64"};
    struct e2b_dockerfile *df = NULL;
    struct e2b_error *err = NULL;
    if (e2b_dockerfile_parse("e2b.Dockerfile", text, strlen(text), &args, &df, &err) < 0) {
        diag("unexpected error: %s", err->msg);
        e2b_error_free(err);
        return NULL;
    }
    return df;
}

static struct e2b_dockerfile *parse(const char *text) { return parse_ba(text, NULL, 0); }

/* The error message for a text that must fail ("" if it parsed). */
static char errbuf[1024];
static const char *error_of(const char *text)
{
    struct e2b_dockerfile *df = NULL;
    struct e2b_error *err = NULL;
    errbuf[0] = '\0';
    if (e2b_dockerfile_parse("e2b.Dockerfile", text, strlen(text), NULL, &df, &err) < 0) {
        snprintf(errbuf, sizeof(errbuf), "%s", err->msg);
        e2b_error_free(err);
    } else {
        e2b_dockerfile_free(df);
    }
    return errbuf;
}

#define is_err(text, want, ...) is_str(error_of(text), want, __VA_ARGS__)

static const struct e2b_df_instr *I(const struct e2b_dockerfile *df, size_t stage, size_t i)
{
    static const struct e2b_df_instr none = {0};
    if (!df || stage >= df->n_stages || i >= df->stages[stage].n_instrs)
        return &none;
    return &df->stages[stage].instrs[i];
}

static const char *arg(const struct e2b_df_instr *in, size_t i) { return i < in->n_args ? in->args[i] : NULL; }

static const char *env_of(char **env, const char *key)
{
    size_t l = strlen(key);
    for (size_t i = 0; env && env[i]; i++)
        if (!strncmp(env[i], key, l) && env[i][l] == '=')
            return env[i] + l + 1;
    return NULL;
}

/* --- expansion ------------------------------------------------------------- */

static const char *lk(void *ud, const char *name)
{
    static const char *const vars[][2] = {
        {"A", "a"}, {"EMPTY", ""}, {"PATH", "/usr/bin:/bin"}, {"FILE", "archive.tar.gz"},
        {"SP", "x y  z"}, {"N", "1"}, {"_u1", "under"},
    };
    (void)ud;
    for (size_t i = 0; i < ARRAY_SIZE(vars); i++)
        if (!strcmp(vars[i][0], name))
            return vars[i][1];
    return NULL;
}

static const char *X(const char *word)
{
    static char buf[512];
    char *r = NULL;
    struct e2b_error *err = NULL;
    if (e2b_df_expand_word(word, '\\', 0, lk, NULL, &r, &err) < 0) {
        snprintf(buf, sizeof(buf), "ERR: %s", err->msg);
        e2b_error_free(err);
        return buf;
    }
    snprintf(buf, sizeof(buf), "%s", r);
    free(r);
    return buf;
}

static void test_expand(void)
{
    is_str(X("$A"), "a", "$VAR");
    is_str(X("${A}"), "a", "${VAR}");
    is_str(X("x${A}y"), "xay", "${VAR} inside a word");
    is_str(X("$Ab"), "", "$VAR takes the longest name");
    is_str(X("$_u1!"), "under!", "names have _ and digits");
    is_str(X("$NOPE"), "", "unset is empty");
    is_str(X("${NOPE:-d}"), "d", ":- unset");
    is_str(X("${EMPTY:-d}"), "d", ":- empty");
    is_str(X("${A:-d}"), "a", ":- set");
    is_str(X("${EMPTY-d}"), "", "- empty is set");
    is_str(X("${NOPE-d}"), "d", "- unset");
    is_str(X("${A:+yes}"), "yes", ":+ set");
    is_str(X("${EMPTY:+yes}"), "", ":+ empty");
    is_str(X("${EMPTY+yes}"), "yes", "+ empty counts as set");
    is_str(X("${NOPE+yes}"), "", "+ unset");
    is_str(X("${NOPE:-${A}-${NOPE2:-z}}"), "a-z", "nested defaults");
    is_str(X("${NOPE:-\"q w\"}"), "q w", "quotes in a default");
    is_str(X("${NOPE?}"), "ERR: NOPE: is not allowed to be unset", "? unset");
    is_str(X("${EMPTY:?must be set}"), "ERR: EMPTY: must be set", ":? empty with message");
    is_str(X("${A:?x}"), "a", ":? set");
    is_str(X("\\$A"), "$A", "\\$ escapes");
    is_str(X("$$"), "", "$$ is a special parameter, unset: empty");
    is_str(X("$1x"), "x", "positional parameters are unset");
    is_str(X("cost $"), "cost $", "a lone $ stays");
    is_str(X("$/x"), "$/x", "$ before a non-name stays");
    is_str(X("'$A'"), "$A", "single quotes keep $");
    is_str(X("\"$A b\""), "a b", "double quotes expand");
    is_str(X("\"a\\\"b\\$c\\\\d\\e\""), "a\"b$c\\d\\e", "escapes inside double quotes");
    is_str(X("a\\ b"), "a b", "escaped space");
    is_str(X("end\\"), "end", "escape at the end is dropped");
    is_str(X("${FILE%.gz}"), "archive.tar", "%% shortest suffix");
    is_str(X("${FILE%%.*}"), "archive", "%%%% longest suffix");
    is_str(X("${FILE#*.}"), "tar.gz", "# shortest prefix");
    is_str(X("${FILE##*.}"), "gz", "## longest prefix");
    is_str(X("${FILE#nomatch}"), "archive.tar.gz", "# without a match");
    is_str(X("${PATH/bin/sbin}"), "/usr/sbin:/bin", "/ first match");
    is_str(X("${PATH//bin/sbin}"), "/usr/sbin:/sbin", "// every match");
    is_str(X("${FILE/a?c/X}"), "Xhive.tar.gz", "? in a pattern");
    is_str(X("${FILE/\\*/X}"), "archive.tar.gz", "escaped * is literal");
    is_str(X("${A"), "ERR: syntax error: missing '}'", "missing }");
    is_str(X("${}"), "ERR: syntax error: bad substitution", "${} is bad");
    is_str(X("${:-x}"), "ERR: syntax error: bad substitution", "${: is bad");
    is_str(X("${A!x}"), "ERR: unsupported modifier (!) in substitution", "unknown modifier");
    is_str(X("${A:=x}"), "ERR: unsupported modifier (:=) in substitution", ":= is not supported");
    is_str(X("'abc"), "ERR: unexpected end of statement while looking for matching single-quote",
           "unterminated single quote");
    is_str(X("\"abc"), "ERR: unexpected end of statement while looking for matching double-quote",
           "unterminated double quote");

    char *r = NULL;
    struct e2b_error *err = NULL;
    ok(e2b_df_expand_word("`$A ``x", '`', 0, lk, NULL, &r, &err) == 0 && !strcmp(r, "$A `x"),
       "backtick escape");
    free(r);
    r = NULL;
    ok(e2b_df_expand_word("'$A' \"q\" \\n", '\\', E2B_DF_EXPAND_KEEP_QUOTES, lk, NULL, &r, &err) == 0 &&
           !strcmp(r, "'a' \"q\" n"),
       "heredoc mode keeps quotes");
    free(r);

    char **w = NULL;
    ok(e2b_df_expand_words("p $SP \"q r\"", '\\', lk, NULL, &w, &err) == 0, "words");
    is_int(e2b_strv_len(w), 5, "values split into words, quotes do not");
    is_str(w[1], "x", "first word of a value");
    is_str(w[4], "q r", "quoted word");
    e2b_strv_free(w);

    is_int(e2b_df_glob_match("a*c", "abbbc", 5, NULL), 1, "glob *");
    is_int(e2b_df_glob_match("a?c", "abbc", 4, NULL), 0, "glob ? is one char");
    is_int(e2b_df_glob_match("*", "", 0, NULL), 1, "glob * matches empty");
    ok(e2b_df_glob_match("a\\x", "ax", 2, &err) < 0 && strstr(err->msg, "invalid escape"), "bad escape in a glob");
    e2b_error_free(err);

    long long ns;
    ok(e2b_df_parse_duration("1m30s", &ns) == 0 && ns == 90000000000LL, "duration 1m30s");
    ok(e2b_df_parse_duration("1.5s", &ns) == 0 && ns == 1500000000LL, "duration 1.5s");
    ok(e2b_df_parse_duration("0", &ns) == 0 && ns == 0, "duration 0");
    ok(e2b_df_parse_duration("300ms", &ns) == 0 && ns == 300000000LL, "duration ms");
    ok(e2b_df_parse_duration("10", &ns) < 0, "duration needs a unit");
    ok(e2b_df_parse_duration("1x", &ns) < 0, "duration with a bad unit");
}

/* --- lines ------------------------------------------------------------------ */

static void test_lines(void)
{
    struct e2b_dockerfile *df;

    df = parse("# syntax=docker/dockerfile:1.7\n"
               "# escape=\\\n"
               "\n"
               "# a comment\n"
               "  # indented comment\n"
               "FROM alpine:3.20   \n"
               "RUN echo a \\\n"
               "  && echo b\n"
               "RUN echo '#not a comment' # nor this\n"
               "RUN --  --not-a-flag\n");
    ok(df != NULL, "basic file parses");
    if (df) {
        is_str(df->syntax, "docker/dockerfile:1.7", "syntax directive");
        is_int(df->escape, '\\', "escape directive");
        is_int(df->n_stages, 1, "one stage");
        is_str(df->stages[0].base, "alpine:3.20", "base image, trailing blanks trimmed");
        is_int(I(df, 0, 1)->line, 7, "line of a continued instruction");
        is_int(I(df, 0, 1)->end_line, 8, "end line of a continued instruction");
        is_str(arg(I(df, 0, 1), 0), "echo a   && echo b", "continuation joins without adding a space");
        is_str(arg(I(df, 0, 2), 0), "echo '#not a comment' # nor this", "# inside a line is text");
        is_str(arg(I(df, 0, 3), 0), "--not-a-flag", "-- ends the flags");
        is_int(I(df, 0, 2)->json, 0, "shell form");
    }
    e2b_dockerfile_free(df);

    df = parse("FROM scratch\n"
               "RUN a \\\n"
               "# comment inside\n"
               "\n"
               "   \n"
               "  b \\\n"
               "    # another\n"
               "  c\n"
               "RUN last \\\n");
    ok(df != NULL, "comments and blank lines inside continuations");
    if (df) {
        is_str(arg(I(df, 0, 1), 0), "a   b   c", "skipped lines leave no trace");
        is_str(arg(I(df, 0, 2), 0), "last", "continuation at end of file");
        is_int(I(df, 0, 1)->end_line, 8, "end line counts skipped lines");
    }
    e2b_dockerfile_free(df);

    df = parse("\xEF\xBB\xBF# escape=`\r\nFROM mcr.microsoft.com/windows\r\n"
               "COPY C:\\src\\app.exe `\r\n  C:\\app\\\r\nRUN dir `\r\n  c:\\\r\n");
    ok(df != NULL, "BOM, CRLF and the backtick escape");
    if (df) {
        is_int(df->escape, '`', "escape=`");
        is_str(arg(I(df, 0, 1), 0), "C:\\src\\app.exe", "backslash is literal with ` escape");
        is_str(arg(I(df, 0, 1), 1), "C:\\app\\", "continued COPY destination");
        is_str(arg(I(df, 0, 2), 0), "dir   c:\\", "trailing backslash is no continuation");
    }
    e2b_dockerfile_free(df);

    df = parse("FROM a\n# escape=`\nRUN x \\\n y\n");
    ok(df && df->escape == '\\' && !strcmp(arg(I(df, 0, 1), 0), "x  y"), "a directive after an instruction is a comment");
    e2b_dockerfile_free(df);
    df = parse("# unknown=1\n# escape=`\nFROM a\nRUN x \\\n y\n");
    ok(df && df->escape == '\\', "a directive after an unknown one is a comment");
    e2b_dockerfile_free(df);
    df = parse("\n# escape=`\nFROM a\n");
    ok(df && df->escape == '\\', "a directive after a blank line is a comment");
    e2b_dockerfile_free(df);
    df = parse("#ESCAPE = `\nFROM a\n");
    ok(df && df->escape == '`', "directive keys are case-insensitive, blanks allowed");
    e2b_dockerfile_free(df);

    is_err("# escape=\\\n# escape=`\nFROM a\n", "e2b.Dockerfile:2: only one escape parser directive can be used",
           "repeated directive");
    is_err("# escape=x\nFROM a\n", "e2b.Dockerfile:1: invalid escape token 'x' does not match ` or \\",
           "bad escape token");
    is_err("", "e2b.Dockerfile: file with no instructions", "empty file");
    is_err("# only a comment\n\n", "e2b.Dockerfile: file with no instructions", "only comments");
    is_err("ARG A=1\n", "e2b.Dockerfile: no FROM instruction: a Dockerfile needs at least one stage", "no FROM");
    is_err("FROM a\nRUN x\0y\n", "", "NUL: the C string ends first (no error)");
    {
        struct e2b_dockerfile *d = NULL;
        struct e2b_error *err = NULL;
        ok(e2b_dockerfile_parse("e2b.Dockerfile", "FROM a\nRUN x\0y\n", 15, NULL, &d, &err) < 0 &&
               !strcmp(err->msg, "e2b.Dockerfile:2: NUL byte in the file"),
           "NUL byte is an error");
        e2b_error_free(err);
    }
}

/* --- heredocs ---------------------------------------------------------------- */

static void test_heredocs(void)
{
    struct e2b_dockerfile *df;
    const struct e2b_df_instr *in;

    df = parse("FROM alpine\n"
               "RUN <<EOF\n"
               "echo $HOME\n"
               "  indented\n"
               "EOF\n"
               "RUN <<-EOT bash\n"
               "\tset -e\n"
               "\t\techo tabs\n"
               "\tEOT\n"
               "RUN <<'RAW' cat > /x && <<\"Q2\" cat > /y\n"
               "$NOT\n"
               "RAW\n"
               "two\n"
               "Q2\n"
               "RUN echo no heredoc <<< here\n"
               "RUN [\"sh\", \"-c\", \"cat <<EOF\"]\n"
               "CMD x\n");
    ok(df != NULL, "heredoc file parses");
    if (df) {
        in = I(df, 0, 1);
        is_int(in->n_heredocs, 1, "one heredoc");
        is_str(in->heredocs[0].name, "EOF", "heredoc name");
        is_str(in->heredocs[0].content, "echo $HOME\n  indented\n", "heredoc body kept as written for RUN");
        ok(in->heredocs[0].expand && !in->heredocs[0].strip_tabs, "unquoted: expand, no strip");
        is_str(arg(in, 0), "<<EOF", "RUN args keep the marker");
        is_int(in->heredocs[0].line, 3, "heredoc body line");
        in = I(df, 0, 2);
        is_str(in->heredocs[0].content, "set -e\necho tabs\n", "<<- strips leading tabs");
        ok(in->heredocs[0].strip_tabs, "strip_tabs");
        is_str(arg(in, 0), "<<-EOT bash", "command after the marker");
        in = I(df, 0, 3);
        is_int(in->n_heredocs, 2, "two heredocs on one line");
        is_str(in->heredocs[0].name, "RAW", "first quoted name");
        is_str(in->heredocs[0].content, "$NOT\n", "first body");
        ok(!in->heredocs[0].expand && !in->heredocs[1].expand, "quoted delimiters disable expansion");
        is_str(in->heredocs[1].name, "Q2", "second name");
        is_str(in->heredocs[1].content, "two\n", "second body");
        is_int(I(df, 0, 4)->n_heredocs, 0, "<<< is not a heredoc");
        is_int(I(df, 0, 5)->n_heredocs, 0, "no heredocs in exec form");
        ok(I(df, 0, 5)->json, "exec form RUN");
        is_int(I(df, 0, 6)->kind, E2B_DF_CMD, "instruction after heredocs");
        is_int(I(df, 0, 6)->line, 17, "line numbers after heredoc bodies");
    }
    e2b_dockerfile_free(df);

    df = parse("FROM alpine\n"
               "ARG WHO=world\n"
               "ENV GREETING=hello\n"
               "COPY <<EOF /etc/motd\n"
               "$GREETING \"${WHO}\" \\$ 'q'\n"
               "EOF\n"
               "COPY --chmod=0755 <<'EOF' <<-EOT2 /usr/local/bin/\n"
               "$GREETING\n"
               "EOF\n"
               "\tsecond $WHO\n"
               "\tEOT2\n"
               "ADD <<EOF /a\n"
               "x\n"
               "EOF\n");
    ok(df != NULL, "COPY heredocs parse");
    if (df) {
        in = I(df, 0, 3);
        is_str(arg(in, 0), "<<EOF", "COPY heredoc source as written");
        is_str(arg(in, 1), "/etc/motd", "COPY heredoc destination");
        is_str(in->heredocs[0].content, "hello \"world\" $ 'q'\n", "COPY heredoc expanded, quotes kept");
        in = I(df, 0, 4);
        is_int(in->n_args, 3, "two heredoc sources and a destination");
        is_str(in->heredocs[0].content, "$GREETING\n", "quoted COPY heredoc not expanded");
        is_str(in->heredocs[1].content, "second world\n", "<<- COPY heredoc stripped and expanded");
        is_int(I(df, 0, 5)->n_heredocs, 1, "ADD heredoc");
    }
    e2b_dockerfile_free(df);

    is_err("FROM a\nRUN true\nRUN x\nRUN y\nRUN cat <<EOF\nno end\n", "e2b.Dockerfile:5:9: unterminated heredoc 'EOF'",
           "unterminated heredoc names line and column");
    is_err("FROM a\nRUN a && \\\n  cat <<END\n", "e2b.Dockerfile:3:7: unterminated heredoc 'END'",
           "heredoc marker on a continuation line");
    is_err("FROM a\nCOPY /x <<EOF\nEOF\n", "e2b.Dockerfile:2:9: COPY cannot have a heredoc as the destination",
           "heredoc destination");
    df = parse("FROM a\nRUN 3<<EOF cat <&3\nx\nEOF\n");
    ok(df && I(df, 0, 1)->heredocs[0].fd == 3, "heredoc with a file descriptor");
    e2b_dockerfile_free(df);
    df = parse("FROM a\nENV X <<EOF\nRUN y\n");
    ok(df && I(df, 0, 2)->kind == E2B_DF_RUN, "no heredocs for ENV");
    e2b_dockerfile_free(df);
}

/* --- instructions ------------------------------------------------------------ */

static void test_instructions(void)
{
    struct e2b_dockerfile *df;
    const struct e2b_df_instr *in;

    df = parse("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\n"
               "ENV A=1 B=\"two words\" C=three\\ words D=$A\n"
               "ENV LEGACY  the rest   of the line\n"
               "ENV E=${A}x\n"
               "LABEL org.opencontainers.image.title=\"my app\" version=$E\n"
               "LABEL legacy label value\n"
               "WORKDIR /src/$B\n"
               "USER ${E}:grp\n"
               "EXPOSE 80 443/tcp 8000-8010/udp\n"
               "VOLUME [\"/data\", \"/$A\"]\n"
               "VOLUME /a /b\n"
               "STOPSIGNAL SIGTERM\n"
               "SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\n"
               "CMD [\"app\", \"--flag\"]\n"
               "ENTRYPOINT exec app $A\n"
               "MAINTAINER someone <a@b.c>\n"
               "ONBUILD COPY --from=x . /app\n"
               "HEALTHCHECK --interval=30s --timeout=5s --start-period=1m --start-interval=2s --retries=3 CMD curl -f http://localhost/\n"
               "run echo lower case\n");
    ok(df != NULL, "every instruction parses");
    if (df) {
        const struct e2b_df_stage *sg = &df->stages[0];
        is_str(sg->name, "build", "stage names are lower-cased");
        is_str(sg->platform, "linux/amd64", "--platform expanded with automatic args");
        in = I(df, 0, 1);
        is_int(in->n_kvs, 4, "ENV pairs");
        is_str(in->kvs[1].value, "two words", "quoted ENV value");
        is_str(in->kvs[2].value, "three words", "escaped ENV value");
        is_str(in->kvs[3].value, "", "ENV values see the variables from before the instruction");
        is_str(arg(in, 0), "A=1", "ENV args are key=value");
        in = I(df, 0, 2);
        is_str(in->kvs[0].key, "LEGACY", "legacy ENV key");
        is_str(in->kvs[0].value, "the rest   of the line", "legacy ENV value is the rest of the line");
        is_str(I(df, 0, 3)->kvs[0].value, "1x", "ENV persists to later instructions");
        in = I(df, 0, 4);
        is_str(in->kvs[0].value, "my app", "LABEL quoted value");
        is_str(in->kvs[1].value, "1x", "LABEL expands");
        is_str(I(df, 0, 5)->kvs[0].value, "label value", "legacy LABEL");
        is_str(arg(I(df, 0, 6), 0), "/src/two words", "WORKDIR expands");
        is_str(arg(I(df, 0, 7), 0), "1x:grp", "USER expands");
        in = I(df, 0, 8);
        is_int(in->n_args, 3, "EXPOSE ports");
        is_str(arg(in, 2), "8000-8010/udp", "EXPOSE range");
        in = I(df, 0, 9);
        ok(in->json && in->n_args == 2 && !strcmp(arg(in, 1), "/1"), "VOLUME JSON expands");
        is_int(I(df, 0, 10)->n_args, 2, "VOLUME list");
        is_str(arg(I(df, 0, 11), 0), "SIGTERM", "STOPSIGNAL");
        in = I(df, 0, 12);
        ok(in->json && in->n_args == 4 && !strcmp(arg(in, 2), "pipefail"), "SHELL");
        in = I(df, 0, 13);
        ok(in->json && in->n_args == 2 && !strcmp(arg(in, 1), "--flag"), "CMD exec form");
        in = I(df, 0, 14);
        ok(!in->json && !strcmp(arg(in, 0), "exec app $A"), "ENTRYPOINT shell form is not expanded");
        is_str(arg(I(df, 0, 15), 0), "someone <a@b.c>", "MAINTAINER");
        in = I(df, 0, 16);
        ok(in->trigger && in->trigger->kind == E2B_DF_COPY, "ONBUILD trigger parsed");
        is_str(arg(in, 0), "COPY --from=x . /app", "ONBUILD keeps the trigger text");
        is_str(e2b_df_flag(in->trigger, "from", NULL), "x", "ONBUILD trigger flags");
        in = I(df, 0, 17);
        ok(in->health && in->health->interval_ns == 30000000000LL && in->health->timeout_ns == 5000000000LL &&
               in->health->start_period_ns == 60000000000LL && in->health->start_interval_ns == 2000000000LL &&
               in->health->retries == 3,
           "HEALTHCHECK options");
        ok(in->health && !strcmp(in->health->test[0], "CMD-SHELL") &&
               !strcmp(in->health->test[1], "curl -f http://localhost/"),
           "HEALTHCHECK CMD shell form");
        in = I(df, 0, 18);
        ok(in->kind == E2B_DF_RUN && !strcmp(in->name, "run"), "instructions are case-insensitive, name as written");
        is_str(env_of(in->env, "A"), "1", "RUN sees ENV");
        is_str(env_of(sg->env, "LEGACY"), "the rest   of the line", "stage ENV for the image config");
        is_str(env_of(sg->env, "PATH"), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "default PATH");
    }
    e2b_dockerfile_free(df);

    df = parse("FROM a\nHEALTHCHECK NONE\nHEALTHCHECK CMD [\"/bin/check\", \"-q\"]\nCMD []\nENTRYPOINT [\"a\"] trailing\n"
               "CMD [\"unterminated\"\nRUN [1, 2]\n");
    ok(df != NULL, "HEALTHCHECK NONE and JSON forms");
    if (df) {
        ok(I(df, 0, 1)->health->none, "HEALTHCHECK NONE");
        in = I(df, 0, 2);
        ok(in->json && !strcmp(in->health->test[0], "CMD") && !strcmp(in->health->test[1], "/bin/check"),
           "HEALTHCHECK exec form");
        ok(I(df, 0, 3)->json && I(df, 0, 3)->n_args == 0, "empty exec form");
        ok(I(df, 0, 4)->json && I(df, 0, 4)->n_args == 1, "text after a JSON array is ignored (as Docker does)");
        ok(!I(df, 0, 5)->json && !strcmp(arg(I(df, 0, 5), 0), "[\"unterminated\""), "broken JSON is shell form");
        ok(!I(df, 0, 6)->json, "a non-string array is shell form");
    }
    e2b_dockerfile_free(df);

    df = parse("FROM a AS src\nFROM b\n"
               "COPY --from=src --chown=1000:1000 --chmod=755 --link --parents --exclude=*.md --exclude=.git a b /dst/\n"
               "ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d --keep-git-dir=true --unpack=false --link=false https://x/y.tar.gz /\n"
               "COPY [\"with space\", \"/d st/\"]\n"
               "COPY --from=0 /x /y\n"
               "COPY --from=nginx:latest /etc/nginx /n\n"
               "RUN --mount=type=cache,target=/root/.cache,sharing=locked,id=pip --mount=type=bind,from=src,source=/out,target=/in \\\n"
               "    --mount=type=secret,id=token --mount=type=tmpfs,target=/tmp,size=64m --mount=type=ssh \\\n"
               "    --mount=type=secret,id=k,env=KEY,required --network=none --security=insecure make\n");
    ok(df != NULL, "COPY/ADD/RUN flags");
    if (df) {
        in = I(df, 1, 1);
        is_int(in->n_flags, 7, "COPY flags kept");
        is_str(e2b_df_flag(in, "chown", NULL), "1000:1000", "--chown");
        bool present = false;
        ok(e2b_df_flag(in, "link", &present) == NULL && present, "bare boolean flag");
        is_int(in->from_stage, 0, "--from names a stage");
        is_int(in->n_args, 3, "COPY sources and destination");
        in = I(df, 1, 2);
        is_str(e2b_df_flag(in, "unpack", NULL), "false", "ADD --unpack=false");
        is_str(e2b_df_flag(in, "keep-git-dir", NULL), "true", "ADD --keep-git-dir=true");
        in = I(df, 1, 3);
        ok(in->json && !strcmp(arg(in, 0), "with space") && !strcmp(arg(in, 1), "/d st/"), "COPY JSON form");
        is_int(I(df, 1, 4)->from_stage, 0, "--from=0");
        is_int(I(df, 1, 5)->from_stage, -1, "--from an image");
        in = I(df, 1, 6);
        is_int(in->n_mounts, 6, "six mounts");
        if (in->n_mounts == 6) {
            ok(in->mounts[0].type == E2B_DF_MOUNT_CACHE && !strcmp(in->mounts[0].target, "/root/.cache") &&
                   in->mounts[0].sharing == E2B_DF_SHARING_LOCKED && !strcmp(in->mounts[0].id, "pip") &&
                   !in->mounts[0].readonly,
               "cache mount");
            ok(in->mounts[1].type == E2B_DF_MOUNT_BIND && in->mounts[1].readonly && in->mounts[1].from_stage == 0 &&
                   !strcmp(in->mounts[1].source, "/out"),
               "bind mount from a stage, read-only by default");
            is_str(in->mounts[2].target, "/run/secrets/token", "secret mount default target");
            ok(in->mounts[3].type == E2B_DF_MOUNT_TMPFS && in->mounts[3].size == 64ULL << 20, "tmpfs size");
            ok(!strcmp(in->mounts[4].id, "default") && !strcmp(in->mounts[4].target, "/run/buildkit/ssh_agent.0"),
               "ssh mount defaults");
            ok(!strcmp(in->mounts[5].env, "KEY") && !in->mounts[5].target && in->mounts[5].required,
               "secret as env, required");
        }
        is_str(e2b_df_flag(in, "network", NULL), "none", "--network");
        is_str(arg(in, 0), "make", "RUN command after flags on continued lines");
        ok(df->stages[1].n_deps == 1 && df->stages[1].deps[0] == 0, "stage dependencies");
    }
    e2b_dockerfile_free(df);
}

/* --- scopes: ARG, ENV, build args --------------------------------------------- */

static void test_scopes(void)
{
    struct e2b_dockerfile *df;
    const struct e2b_df_instr *in;
    static const char *const ba[] = {"VERSION=3.19", "STAGE_ARG=cli", "UNUSED=1", "HTTP_PROXY=http://p:3128"};

    df = parse_ba("ARG VERSION=3.18\n"
                  "ARG BASE=alpine:${VERSION}\n"
                  "ARG NOVAL\n"
                  "FROM $BASE AS one\n"
                  "RUN echo $VERSION\n"
                  "ARG VERSION\n"
                  "ARG STAGE_ARG=default OTHER=o\n"
                  "ENV STAGE_ARG=from-env\n"
                  "WORKDIR /$VERSION/$STAGE_ARG/$OTHER\n"
                  "RUN true\n"
                  "ARG TARGETARCH\n"
                  "ARG A=1 B=$A\n"
                  "LABEL arch=$TARGETARCH b=[$B] bp=$BUILDPLATFORM\n"
                  "FROM one\n"
                  "RUN true\n"
                  "LABEL v=[$VERSION]\n",
                  ba, ARRAY_SIZE(ba));
    ok(df != NULL, "scopes file parses");
    if (df) {
        is_str(df->stages[0].base, "alpine:3.19", "build arg overrides a global default used in FROM");
        is_int(df->n_globals, 3, "three global args");
        ok(df->globals[2].value == NULL, "global ARG without value");
        in = I(df, 0, 1);
        is_str(env_of(in->env, "VERSION"), NULL, "globals are not visible in a stage without ARG");
        is_str(env_of(in->env, "HTTP_PROXY"), "http://p:3128", "proxy build args need no ARG");
        is_str(arg(I(df, 0, 2), 0), "VERSION=3.19", "ARG redeclared in the stage gets the global value");
        is_str(I(df, 0, 3)->kvs[0].value, "cli", "build arg overrides a stage ARG default");
        is_str(arg(I(df, 0, 5), 0), "/3.19/from-env/o", "ENV wins over ARG");
        in = I(df, 0, 6);
        is_str(env_of(in->env, "STAGE_ARG"), "from-env", "RUN env: ENV over ARG");
        is_str(env_of(in->env, "OTHER"), "o", "RUN env has ARGs");
        in = I(df, 0, 9);
        is_str(in->kvs[0].value, "arm64", "automatic TARGETARCH after ARG");
        is_str(in->kvs[1].value, "[]", "ARG defaults see the scope from before the instruction");
        is_str(in->kvs[2].value, "", "BUILDPLATFORM needs an ARG in a stage");
        is_int(df->stages[1].base_stage, 0, "FROM an earlier stage");
        is_str(env_of(I(df, 1, 1)->env, "STAGE_ARG"), "from-env", "ENV inherited from the base stage");
        is_str(env_of(I(df, 1, 1)->env, "OTHER"), NULL, "ARGs are not inherited");
        is_str(I(df, 1, 2)->kvs[0].value, "[]", "ARG scope ends with the stage");
        ok(df->unused_build_args && df->unused_build_args[0] && !strcmp(df->unused_build_args[0], "UNUSED") &&
               !df->unused_build_args[1],
           "unused build args are reported");
    }
    e2b_dockerfile_free(df);

    df = parse("FROM --platform=$TARGETPLATFORM alpine\nARG TARGETOS TARGETVARIANT\nRUN x\n");
    ok(df && !strcmp(df->stages[0].platform, "linux/arm64/v8"), "TARGETPLATFORM in FROM");
    ok(df && !strcmp(env_of(I(df, 0, 2)->env, "TARGETOS"), "linux") &&
           !strcmp(env_of(I(df, 0, 2)->env, "TARGETVARIANT"), "v8"),
       "automatic args in a stage");
    e2b_dockerfile_free(df);

    df = parse("FROM a\nENV P=/x:$PATH\nENV Q=${UNSET:-fallback} R='$P'\n");
    ok(df && !strcmp(I(df, 0, 1)->kvs[0].value, "/x:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
       "ENV sees the default PATH");
    ok(df && !strcmp(I(df, 0, 2)->kvs[0].value, "fallback") && !strcmp(I(df, 0, 2)->kvs[1].value, "$P"),
       "defaults and single quotes in ENV");
    e2b_dockerfile_free(df);
}

static int fake_image_env(void *ud, const char *image, const char *platform, char ***ret, struct e2b_error **err)
{
    (void)ud;
    (void)platform;
    if (!strcmp(image, "bad"))
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "no such image");
    *ret = e2b_strv_push(e2b_strv_push(NULL, "PATH=/opt/bin"), "LANG=C.UTF-8");
    return 0;
}

static void test_image_env(void)
{
    struct e2b_build_args ba = {.image_env = fake_image_env};
    struct e2b_dockerfile *df = NULL;
    struct e2b_error *err = NULL;
    const char *t = "FROM img\nENV PATH=$PATH:/x L=$LANG\n";
    ok(e2b_dockerfile_parse("D", t, strlen(t), &ba, &df, &err) == 0 &&
           !strcmp(I(df, 0, 1)->kvs[0].value, "/opt/bin:/x") && !strcmp(I(df, 0, 1)->kvs[1].value, "C.UTF-8"),
       "image ENV from the callback");
    e2b_dockerfile_free(df);
    df = NULL;
    t = "FROM bad\n";
    ok(e2b_dockerfile_parse("D", t, strlen(t), &ba, &df, &err) < 0 && !strcmp(err->msg, "D:1: FROM bad: no such image"),
       "image ENV errors are wrapped");
    e2b_error_free(err);
}

/* --- stages and --target --------------------------------------------------------- */

static void test_stages(void)
{
    struct e2b_dockerfile *df;
    struct e2b_error *err = NULL;
    size_t t;
    bool *needed = NULL;

    df = parse("FROM alpine AS base\n"
               "FROM base AS deps\n"
               "RUN --mount=type=bind,from=assets,target=/a true\n"
               "FROM golang AS build\n"
               "COPY --from=deps /x /x\n"
               "FROM alpine AS assets\n"
               "FROM alpine AS unrelated\n"
               "FROM scratch\n"
               "COPY --from=build /app /app\n");
    ok(df != NULL, "multi-stage file parses");
    if (df) {
        is_int(df->n_stages, 6, "six stages");
        ok(e2b_dockerfile_select(df, NULL, &t, &needed, &err) == 0 && t == 5, "default target is the last stage");
        ok(needed && needed[0] && needed[1] && needed[2] && needed[3] && !needed[4] && needed[5],
           "needed stages follow FROM, COPY --from and mount from= (forward too)");
        free(needed);
        needed = NULL;
        ok(e2b_dockerfile_select(df, "DEPS", &t, &needed, &err) == 0 && t == 1, "--target by name, any case");
        ok(needed && needed[0] && needed[1] && !needed[2] && needed[3] && !needed[4] && !needed[5],
           "needed stages for an inner target");
        free(needed);
        ok(e2b_dockerfile_select(df, "nope", &t, NULL, &err) < 0, "unknown target");
        is_str(err ? err->msg : NULL,
               "e2b.Dockerfile: target stage 'nope' could not be found (stages: base, deps, build, assets, unrelated)",
               "unknown target lists the stages");
        e2b_error_free(err);
        err = NULL;
        ok(e2b_dockerfile_find_stage(df, "4") == &df->stages[4], "stage by index");

        json_t *j = e2b_dockerfile_to_json(df, NULL, 0);
        ok(j && json_array_size(json_object_get(j, "stages")) == 6, "JSON has every stage");
        json_t *s2 = json_array_get(json_object_get(j, "stages"), 2);
        json_t *copy = json_array_get(json_object_get(s2, "instructions"), 1);
        is_str(json_string_value(json_object_get(copy, "instruction")), "COPY", "JSON instruction name");
        is_int(json_integer_value(json_object_get(copy, "line")), 5, "JSON line");
        is_int(json_integer_value(json_object_get(copy, "from_stage")), 1, "JSON from_stage");
        json_decref(j);
    }
    e2b_dockerfile_free(df);

    is_err("FROM a AS x\nFROM b AS X\n", "e2b.Dockerfile:2: duplicate stage name 'X' (first used on line 1)",
           "duplicate stage name");
    is_err("FROM a AS 1x\n",
           "e2b.Dockerfile:1:11: invalid stage name '1x': it must start with a letter and contain only letters, digits, '-', '_' and '.'",
           "bad stage name");
    is_err("FROM a AS x\nCOPY --from=x / /\n", "e2b.Dockerfile:2: circular dependency: stage 'x' copies from itself",
           "COPY from itself");
    is_err("FROM a AS x\nRUN --mount=from=X,target=/x true\n",
           "e2b.Dockerfile:2:5: circular dependency: stage 'X' mounts itself", "mount from itself");
    is_err("FROM a AS x\nCOPY --from=x / /\nFROM b AS x\n", "e2b.Dockerfile:2: circular dependency: stage 'x' copies from itself",
           "errors come in file order");
    is_err("FROM a AS x\nCOPY --from=y / /\nFROM b AS y\nCOPY --from=x / /\n",
           "e2b.Dockerfile:1: circular dependency detected on stage 'x'", "stage cycle");
    is_err("FROM a\nCOPY --from=0 / /\n", "e2b.Dockerfile:2: COPY --from=0 refers to the current or a later stage",
           "COPY --from index of the current stage");
    is_err("FROM a\nRUN --mount=from=3,target=/x true\n",
           "e2b.Dockerfile:2:5: RUN --mount from=3 refers to the current or a later stage", "mount from a later stage");
}

/* --- errors --------------------------------------------------------------------------- */

static void test_errors(void)
{
    is_err("FROM a\nRUN x\n\n\n\n\nRUNN y\n", "e2b.Dockerfile:7:1: unknown instruction 'RUNN'", "unknown instruction");
    is_err("FROM a\n   FOO bar\n", "e2b.Dockerfile:2:4: unknown instruction 'FOO'", "column of an indented instruction");
    is_err("\n\nFROM\n", "e2b.Dockerfile:3: FROM requires an image name", "FROM without an image");
    is_err("FROM a b\n", "e2b.Dockerfile:1:8: FROM requires either one or three arguments: FROM [--platform=...] <image> [AS <name>]",
           "FROM with two words");
    is_err("FROM a NOT b\n", "e2b.Dockerfile:1:8: FROM requires either one or three arguments: FROM [--platform=...] <image> [AS <name>]",
           "FROM without AS");
    is_err("FROM $NOPE\n", "e2b.Dockerfile:1:6: FROM: base name '$NOPE' should not be blank", "FROM expands to nothing");
    is_err("RUN x\nFROM a\n", "e2b.Dockerfile:1:1: RUN before the first FROM: only ARG may come before FROM",
           "instruction before FROM");
    is_err("FROM a\nSHELL /bin/sh -c\n", "e2b.Dockerfile:2: SHELL requires a JSON array, e.g. SHELL [\"/bin/sh\", \"-c\"]",
           "SHELL needs JSON");
    is_err("FROM a\nSHELL []\n", "e2b.Dockerfile:2: SHELL requires at least one argument", "SHELL empty");
    is_err("FROM a\nCOPY --frm=x a b\n", "e2b.Dockerfile:2:6: unknown flag '--frm' for COPY", "unknown flag");
    is_err("FROM a\nADD --from=x a b\n", "e2b.Dockerfile:2:5: unknown flag '--from' for ADD", "ADD has no --from");
    is_err("FROM a\nENV --x=1\n", "e2b.Dockerfile:2:5: unknown flag '--x' for ENV", "ENV has no flags");
    is_err("FROM a\nCOPY --from=a --from=b x y\n", "e2b.Dockerfile:2:15: duplicate flag '--from' for COPY", "duplicate flag");
    is_err("FROM a\nCOPY --link=maybe x y\n", "e2b.Dockerfile:2:6: COPY --link expects true or false, not 'maybe'",
           "bad boolean flag");
    is_err("FROM a\nCOPY --from x y\n", "e2b.Dockerfile:2:6: COPY --from needs a value (--from=...)", "flag without value");
    is_err("FROM a\nCOPY onlyone\n",
           "e2b.Dockerfile:2: COPY requires at least two arguments, but only one was provided: the destination could not be determined",
           "COPY with one argument");
    is_err("FROM a\nADD\n", "e2b.Dockerfile:2: ADD requires at least two arguments: a source and a destination", "ADD with none");
    is_err("FROM a\nCOPY --chmod=999 a b\n",
           "e2b.Dockerfile:2: COPY --chmod=999: expected an octal mode (0755) or a symbolic one (u+x)", "bad chmod");
    is_err("FROM a\nADD --checksum=md5:x http://a /b\n",
           "e2b.Dockerfile:2: ADD --checksum=md5:x: expected sha256:<64 hex digits> (or sha384, sha512)", "bad checksum");
    is_err("FROM a\nENV\n", "e2b.Dockerfile:2: ENV requires at least one argument", "ENV empty");
    is_err("FROM a\nENV ONLYKEY\n", "e2b.Dockerfile:2:5: ENV ONLYKEY needs a value: ENV <key>=<value>", "legacy ENV without value");
    is_err("FROM a\nENV A=1 B\n", "e2b.Dockerfile:2:9: ENV: can't find = in 'B'; use ENV <key>=<value>", "ENV pair without =");
    is_err("FROM a\nENV =x\n", "e2b.Dockerfile:2:5: ENV names can not be blank", "ENV blank name");
    is_err("FROM a\nLABEL\n", "e2b.Dockerfile:2: LABEL requires at least one argument", "LABEL empty");
    is_err("FROM a\nARG\n", "e2b.Dockerfile:2: ARG requires at least one argument", "ARG empty");
    is_err("FROM a\nARG =1\n", "e2b.Dockerfile:2:5: ARG names can not be blank", "ARG blank name");
    is_err("FROM a\nRUN\n", "e2b.Dockerfile:2: RUN requires at least one argument", "RUN empty");
    is_err("FROM a\nCMD\n", "e2b.Dockerfile:2: CMD requires at least one argument", "CMD empty");
    is_err("FROM a\nWORKDIR\n", "e2b.Dockerfile:2: WORKDIR requires exactly one argument", "WORKDIR empty");
    is_err("FROM a\nWORKDIR $NOPE\n", "e2b.Dockerfile:2:9: WORKDIR: '$NOPE' expands to an empty value", "WORKDIR empty after expansion");
    is_err("FROM a\nUSER\n", "e2b.Dockerfile:2: USER requires exactly one argument", "USER empty");
    is_err("FROM a\nSTOPSIGNAL SIGFOO\n", "e2b.Dockerfile:2:12: STOPSIGNAL: invalid signal 'SIGFOO'", "bad signal");
    is_err("FROM a\nSTOPSIGNAL 9\nSTOPSIGNAL SIGRTMIN+3\nSTOPSIGNAL term\n", "", "numeric, RT and lower-case signals");
    is_err("FROM a\nEXPOSE 80/icmp\n", "e2b.Dockerfile:2:8: EXPOSE: invalid port '80/icmp' (expected 80, 80/tcp, 8000-8010/udp)",
           "bad port");
    is_err("FROM a\nEXPOSE 70000\n", "e2b.Dockerfile:2:8: EXPOSE: invalid port '70000' (expected 80, 80/tcp, 8000-8010/udp)",
           "port out of range");
    is_err("FROM a\nEXPOSE\n", "e2b.Dockerfile:2: EXPOSE requires at least one argument", "EXPOSE empty");
    is_err("FROM a\nVOLUME\n", "e2b.Dockerfile:2: VOLUME requires at least one argument", "VOLUME empty");
    is_err("FROM a\nVOLUME [\"\"]\n", "e2b.Dockerfile:2: VOLUME specified can not be an empty string", "VOLUME empty string");
    is_err("FROM a\nHEALTHCHECK\n", "e2b.Dockerfile:2: HEALTHCHECK requires NONE or CMD <command>", "HEALTHCHECK empty");
    is_err("FROM a\nHEALTHCHECK NONE x\n", "e2b.Dockerfile:2:17: HEALTHCHECK NONE takes no arguments", "HEALTHCHECK NONE args");
    is_err("FROM a\nHEALTHCHECK RUN x\n", "e2b.Dockerfile:2:13: unknown type 'RUN' in HEALTHCHECK (try CMD)", "HEALTHCHECK type");
    is_err("FROM a\nHEALTHCHECK CMD\n", "e2b.Dockerfile:2: missing command after HEALTHCHECK CMD", "HEALTHCHECK CMD empty");
    is_err("FROM a\nHEALTHCHECK --interval=1 CMD x\n",
           "e2b.Dockerfile:2: HEALTHCHECK --interval=1: not a duration (30s, 1m30s, 500ms)", "bad duration");
    is_err("FROM a\nHEALTHCHECK --timeout=10us CMD x\n", "e2b.Dockerfile:2: HEALTHCHECK --timeout=10us: cannot be less than 1ms",
           "too short duration");
    is_err("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", "e2b.Dockerfile:2: HEALTHCHECK --retries cannot be negative (-1)",
           "negative retries");
    is_err("FROM a\nONBUILD\n", "e2b.Dockerfile:2: ONBUILD requires at least one argument", "ONBUILD empty");
    is_err("FROM a\nONBUILD ONBUILD RUN x\n", "e2b.Dockerfile:2:9: ONBUILD ONBUILD is not allowed", "ONBUILD ONBUILD");
    is_err("FROM a\nONBUILD FROM b\n", "e2b.Dockerfile:2:9: FROM isn't allowed as an ONBUILD trigger", "ONBUILD FROM");
    is_err("FROM a\nONBUILD BOGUS x\n", "e2b.Dockerfile:2:9: unknown instruction 'BOGUS'", "ONBUILD unknown trigger");
    is_err("FROM a\nONBUILD COPY --nope=1 a b\n", "e2b.Dockerfile:2:14: unknown flag '--nope' for COPY", "ONBUILD trigger flags");
    is_err("FROM a\nRUN --mount=type=nfs,target=/x true\n",
           "e2b.Dockerfile:2:5: RUN --mount: unsupported mount type 'nfs' (bind, cache, tmpfs, secret or ssh)", "bad mount type");
    is_err("FROM a\nRUN --mount=type=cache true\n", "e2b.Dockerfile:2:5: RUN --mount: a cache mount needs target=", "mount without target");
    is_err("FROM a\nRUN --mount=type=bind,target=/x,size=1 true\n",
           "e2b.Dockerfile:2:5: RUN --mount: unexpected key 'size' for a bind mount", "mount key for another type");
    is_err("FROM a\nRUN --mount=type=cache,target=/x,sharing=maybe true\n",
           "e2b.Dockerfile:2:5: RUN --mount: unsupported sharing value 'maybe' (shared, private or locked)", "bad sharing");
    is_err("FROM a\nRUN --mount=type=cache,target=/x,mode=9 true\n", "e2b.Dockerfile:2:5: RUN --mount: invalid mode '9'",
           "bad mount mode");
    is_err("FROM a\nRUN --network=bridge x\n", "e2b.Dockerfile:2: RUN --network=bridge: expected none, host or default", "bad network");
    is_err("FROM a\nRUN --security=x y\n", "e2b.Dockerfile:2: RUN --security=x: expected sandbox or insecure", "bad security");
    is_err("FROM a\nWORKDIR ${X\n", "e2b.Dockerfile:2:9: cannot expand '${X': syntax error: missing '}'", "expansion error with column");
    is_err("FROM a\nRUN x \\\n  && y\nCOPY a \\\n  ${B:?B is required} /\n",
           "e2b.Dockerfile:5:3: cannot expand '${B:?B': syntax error: missing '}'",
           "expansion error on a continuation line");
    is_err("FROM a\nCOPY ${B:?required} /\n", "e2b.Dockerfile:2:6: cannot expand '${B:?required}': B: required", ":? error");
    is_err("FROM a\nLABEL x=\"unterminated\n",
           "e2b.Dockerfile:2:9: cannot expand '\"unterminated': unexpected end of statement while looking for matching double-quote",
           "unterminated quote in LABEL");
}

static void test_limits(void)
{
    /* hostile shapes must fail cleanly, not exhaust the stack */
    struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    strbuf_addstr(&sb, "FROM a\nENV X=");
    for (int i = 0; i < 20000; i++)
        strbuf_addstr(&sb, "${A:-");
    strbuf_addstr(&sb, "\n");
    ok(strstr(error_of(sb.buf), "substitutions nested more than 64 deep") != NULL, "deeply nested substitutions");
    /* ${P//$none/...} puts the replacement between every two bytes: a few
     * lines would grow P past memory (found by make fuzz) */
    strbuf_reset(&sb);
    strbuf_addstr(&sb, "FROM a\nENV P=abc\n");
    for (int i = 0; i < 12; i++)
        strbuf_addstr(&sb, "ENV P=${P//$none/0123456789}\n");
    ok(strstr(error_of(sb.buf), "pattern substitution on a value of") != NULL, "a value grown without end is refused");
    strbuf_reset(&sb);
    strbuf_addstr(&sb, "FROM a\nENV P=abcdefgh\n");
    for (int i = 0; i < 18; i++)
        strbuf_addstr(&sb, "ENV P=$P$P\n");
    ok(strstr(error_of(sb.buf), "an expanded word is longer than 1 MiB") != NULL, "so is one doubled without a pattern");
    struct e2b_dockerfile *big = parse("FROM a\nENV P=abc\nENV P=${P//b/xyz}\nENV Q=${P%z*}\n");
    ok(big != NULL, "ordinary substitutions still work");
    e2b_dockerfile_free(big);
    strbuf_reset(&sb);
    strbuf_addstr(&sb, "FROM a\nONBUILD");
    for (int i = 0; i < 20000; i++)
        strbuf_addstr(&sb, " ONBUILD");
    strbuf_addstr(&sb, " RUN x\n");
    is_str(error_of(sb.buf), "e2b.Dockerfile:2:9: ONBUILD ONBUILD is not allowed", "ONBUILD chains");
    strbuf_reset(&sb);
    strbuf_addstr(&sb, "FROM a AS s0\n");
    for (int i = 1; i < 3000; i++)
        strbuf_addf(&sb, "FROM s%d AS s%d\nCOPY --from=s%d / /\n", i - 1, i, i - 1);
    struct e2b_dockerfile *df = parse(sb.buf);
    size_t t = 0;
    bool *needed = NULL;
    ok(df && e2b_dockerfile_select(df, "s5", &t, &needed, NULL) == 0 && t == 5 && needed[0] && !needed[6],
       "a long chain of stages");
    free(needed);
    e2b_dockerfile_free(df);
    strbuf_release(&sb);
}

static void test_json(void)
{
    static const char *const ba[] = {"V=2"};
    struct e2b_dockerfile *df = parse_ba("# syntax=docker/dockerfile:1\nARG V=1\nFROM alpine:$V AS a\n"
                                         "COPY --chown=$V <<EOF /x\nv=$V\nEOF\nRUN --mount=type=cache,target=/c echo $V\n"
                                         "FROM a\nHEALTHCHECK --retries=2 CMD [\"true\"]\nONBUILD RUN x\n",
                                         ba, 1);
    ok(df != NULL, "JSON sample parses");
    if (!df)
        return;
    size_t t;
    bool *needed = NULL;
    e2b_dockerfile_select(df, "a", &t, &needed, NULL);
    json_t *j = e2b_dockerfile_to_json(df, needed, t);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    ok(s && strstr(s, "\"syntax\":\"docker/dockerfile:1\""), "JSON syntax");
    ok(s && strstr(s, "\"global_args\":[{\"key\":\"V\",\"value\":\"2\"}]"), "JSON global args");
    ok(s && strstr(s, "\"base\":\"alpine:2\""), "JSON expanded base");
    ok(s && strstr(s, "\"flags\":[{\"name\":\"chown\",\"value\":\"\"}]"), "JSON flags (ARG not redeclared: empty)");
    ok(s && strstr(s, "\"heredocs\":[{\"content\":\"v=\\n\",\"expand\":true,\"line\":5,\"name\":\"EOF\",\"strip_tabs\":false}]"),
       "JSON heredocs");
    ok(s && strstr(s, "\"mounts\":[{\"id\":\"/c\",\"readonly\":false,\"sharing\":\"shared\",\"target\":\"/c\",\"type\":\"cache\"}]"),
       "JSON mounts");
    ok(s && strstr(s, "\"needed\":true") && strstr(s, "\"needed\":false") && strstr(s, "\"target\":0"), "JSON target selection");
    ok(s && strstr(s, "\"healthcheck\":{\"interval_ns\":0,\"retries\":2"), "JSON healthcheck");
    ok(s && strstr(s, "\"trigger\":{"), "JSON ONBUILD trigger");
    ok(s && strstr(s, "\"original\":\"RUN --mount=type=cache,target=/c echo $V\""), "JSON original text");
    if (s && !strstr(s, "\"needed\":true"))
        diag("%s", s);
    free(s);
    json_decref(j);
    free(needed);
    e2b_dockerfile_free(df);
}

int main(void)
{
    test_expand();
    test_lines();
    test_heredocs();
    test_instructions();
    test_scopes();
    test_image_env();
    test_stages();
    test_errors();
    test_limits();
    test_json();
    return tap_done();
}
