/* envd-ci.h - the code interpreter: E2B's code-interpreter server (the
 * protocol of e2b-dev/code-interpreter's template/server, port 49999) as an
 * applet of the guest binary, on envd's HTTP server (envd-http.c) and
 * driving Jupyter kernels directly (envd-jupyter.c), with no Jupyter server
 * or Python web framework between.
 *
 * Routes: POST /execute (newline-delimited JSON: stdout, stderr, result,
 * error, number_of_executions, keepalive every 5 s, end_of_execution),
 * POST and GET /contexts, DELETE /contexts/{id}, POST
 * /contexts/{id}/restart, GET /health. One kernel per context; one
 * execution runs at a time in a context, the others wait in order. A
 * client that goes away interrupts its execution (as E2B's server does);
 * a kernel that dies is started again and its execution ends with an
 * error line. Requests are checked by envd: /execute (and any request
 * that carries X-Access-Token) asks envd's GET /envs with the request's
 * token, so the token is exactly the one envd wants, and the answer is the
 * sandbox's environment, which every context gets before it runs code.
 * When no envd answers (the server run outside a sandbox, or in a build
 * step) there is no token to check and no environment to add.
 */
#ifndef E2B_ENVD_CI_H
#define E2B_ENVD_CI_H

#define E2B_CI_DEFAULT_PORT 49999

/* `envd code-interpreter [--port N] [--listen ADDR:PORT] [--envd URL] [--cwd DIR]
 * [--no-default-contexts] [-v]` */
int e2b_ci_main(int argc, char **argv);


#endif
