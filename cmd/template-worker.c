/* template-worker.c - `e2b __template-worker SPEC`: one build of `e2b serve`.
 *
 * The server is multi-threaded and the builder wants a single-threaded
 * process of its own (it enters a mount namespace), so each build of the
 * template API runs this hidden command: SPEC (JSON, written by
 * lib/serve-templates.c) names the Dockerfile, the context and the build's
 * options; the build's progress and output come out on stdout as JSON
 * lines {"step", "level", "message"} (the step as E2B names it: "base",
 * "1", ...), and the last line is {"done": <template.json>} or
 * {"error": <message>, "step": <step>}.
 */
#include "build.h"
#include "cmd.h"
#include "strbuf.h"
#include "usage.h"

#include <stdio.h>

const struct e2b_opt opts_template_worker[] = {
    E2B_OPT_ARG("spec", E2B_OPTF_REQUIRED, "the build, as JSON"),
    E2B_OPT_END,
};

struct worker {
    json_t *labels;     /* per instruction: the step */
    json_t *texts;      /* per instruction: what to show for it (null: nothing), or NULL */
    long steps;         /* E2B steps */
    size_t index;       /* the instruction running */
    const char *step;   /* the current one */
    struct strbuf line; /* step output not ended by a line break yet */
};

static void emit(const char *step, const char *level, const char *msg, size_t len)
{
    json_t *j = json_pack("{s:s, s:s, s:s%}", "step", step, "level", level, "message", msg, len);
    if (!j) /* not UTF-8: say so rather than lose the line */
        j = json_pack("{s:s, s:s, s:s}", "step", step, "level", level, "message",
                      "(output that is not UTF-8)");
    char *s = e2b_json_dump(j, JSON_COMPACT);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(j);
}

static void flush_line(struct worker *w)
{
    if (w->line.len) {
        emit(w->step, "info", w->line.buf, w->line.len);
        strbuf_reset(&w->line);
    }
}

static void on_step(void *data, size_t index, size_t total)
{
    struct worker *w = data;
    flush_line(w);
    const char *l = json_string_value(json_array_get(w->labels, index - 1));
    w->step = l ? l : "finalize";
    w->index = index;
}

/* The builder's "[k/n] INSTRUCTION[ (cached)]" as E2B shows a step:
 * "[builder 3/7] RUN ...", "CACHED [builder 3/7] ...", "[base] FROM ...";
 * NULL: not shown (the instructions a step needs besides its own). */
static char *step_line(struct worker *w, const char *line)
{
    unsigned k, n;
    int used = 0;
    if (!w->texts || sscanf(line, "[%u/%u] %n", &k, &n, &used) != 2 || !used || k != w->index)
        return xstrdup(line);
    json_t *t = json_array_get(w->texts, k - 1);
    if (!json_is_string(t))
        return NULL;
    bool cached = e2b_str_has_suffix(line, " (cached)");
    if (STREQ(w->step, "base"))
        return xasprintf("%s[base] %s", cached ? "CACHED " : "", json_string_value(t));
    return xasprintf("%s[builder %s/%ld] %s", cached ? "CACHED " : "", w->step, w->steps,
                     json_string_value(t));
}

static void on_progress(void *data, const char *line)
{
    struct worker *w = data;
    flush_line(w);
    if (STREQ(line, "start and ready commands") || e2b_str_has_prefix(line, "finishing:"))
        w->step = "finalize";
    _cleanup_free_ char *shown = step_line(w, line);
    if (shown)
        emit(w->step, "info", shown, strlen(shown));
}

static void on_output(void *data, const char *buf, size_t len)
{
    struct worker *w = data;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\n' || buf[i] == '\r') {
            flush_line(w);
            continue;
        }
        strbuf_addch(&w->line, buf[i]);
        if (w->line.len >= 4096)
            flush_line(w);
    }
}

static const char **strv_of(json_t *a)
{
    const char **v = xcalloc(json_array_size(a) + 1, sizeof(char *));
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x)
        v[i] = json_string_value(x);
    return v;
}

int cmd_template_worker(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_json_ json_t *spec = NULL;
    if (e2b_json_load_file(e2b_args_str(args, "spec"), &spec, &err) < 0)
        return e2b_fail(err);
    struct worker w = { .labels = json_object_get(spec, "labels"),
                        .step = "base",
                        .line = STRBUF_INIT,
                        .steps = (long)e2b_json_int(spec, "steps", 0) };
    json_t *texts = json_object_get(spec, "texts");
    w.texts = json_is_array(texts) ? texts : NULL;
    _cleanup_free_ const char **tags = strv_of(json_object_get(spec, "tags"));
    _cleanup_free_ const char **insecure = strv_of(json_object_get(spec, "insecureRegistries"));
    json_t *reg = json_object_get(spec, "registry");
    struct e2b_build_opts o = {
        .context = e2b_json_str(spec, "context"),
        .dockerfile = e2b_json_str(spec, "dockerfile"),
        .name = e2b_json_str(spec, "name"),
        .tags = tags,
        .start_cmd = e2b_json_str(spec, "startCmd"),
        .ready_cmd = e2b_json_str(spec, "readyCmd"),
        .ready_timeout_s = (int)e2b_json_int(spec, "readyTimeout", 120),
        .cpu_count = (long)e2b_json_int(spec, "cpuCount", 0),
        .memory_mb = (long)e2b_json_int(spec, "memoryMB", 0),
        .insecure_registries = insecure,
        .network_host = STREQ(e2b_json_str(spec, "network") ?: "", "host"),
        .template_id = e2b_json_str(spec, "templateID"),
        .build_id = e2b_json_str(spec, "buildID"),
        .registry_username = e2b_json_str(reg, "username"),
        .registry_password = e2b_json_str(reg, "password"),
        .e2b_steps = json_is_true(json_object_get(spec, "e2bSteps")),
        .force_from = (size_t)e2b_json_int(spec, "forceFrom", 0),
        .step = on_step,
        .progress = on_progress,
        .output = on_output,
        .data = &w,
    };
    _cleanup_json_ json_t *meta = NULL;
    int r = e2b_build_run(&o, &meta, &err);
    flush_line(&w);
    strbuf_release(&w.line);
    const char *msg = r == 0 ? NULL : err->msg;
    int skip = 0;
    _cleanup_free_ char *nice = NULL;
    /* "Dockerfile:8: RUN: ..." names a line of a Dockerfile the user never
     * wrote: E2B's steps are named instead */
    if (msg && w.texts && sscanf(msg, "Dockerfile:%*u: %n", &skip) == 0 && skip)
        msg = nice = xasprintf("step %s: %s", w.step, msg + skip);
    json_t *last = r == 0 ? json_pack("{s:O}", "done", meta)
                          : json_pack("{s:s, s:s}", "error", msg, "step", w.step);
    char *s = e2b_json_dump(last, JSON_COMPACT);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(last);
    return r == 0 ? 0 : 1;
}
