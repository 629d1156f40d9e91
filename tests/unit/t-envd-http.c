/* t-envd-http.c - response header validation and download file names. */
#include "envd-files.h"
#include "envd-http.h"
#include "tap.h"

int main(void)
{
    ok(e2b_http_header_valid("Cache-Control", "no-store"), "plain header");
    ok(e2b_http_header_valid("X-Metadata-a_b", "tab\tinside"), "a tab is allowed");
    ok(e2b_http_header_valid("X-Empty", ""), "an empty value is allowed");
    ok(!e2b_http_header_valid("X", "a\r\nX-Injected: yes"), "CR LF refused");
    ok(!e2b_http_header_valid("X", "a\nb"), "bare LF refused");
    ok(!e2b_http_header_valid("X", "a\rb"), "bare CR refused");
    ok(!e2b_http_header_valid("X", "nul\x01"), "other control characters refused");
    ok(!e2b_http_header_valid("X", "del\x7f"), "DEL refused");
    ok(e2b_http_header_valid("X", "caf\xc3\xa9"), "UTF-8 bytes pass (obs-text)");
    ok(!e2b_http_header_valid("Bad Name", "v"), "space in a name refused");
    ok(!e2b_http_header_valid("Bad:Name", "v"), "colon in a name refused");
    ok(!e2b_http_header_valid("X\r\nY", "v"), "CR LF in a name refused");
    ok(!e2b_http_header_valid("", "v"), "empty name refused");

    char *cd = e2b_files_content_disposition("report.txt");
    is_str(cd, "attachment; filename=\"report.txt\"", "plain name is quoted as is");
    free(cd);
    cd = e2b_files_content_disposition("a\r\nX-Injected: yes");
    is_str(cd, "attachment; filename=\"a__X-Injected: yes\"; filename*=UTF-8''a%0D%0AX-Injected%3A%20yes",
           "CR LF are percent-encoded, the fallback has none");
    ok(e2b_http_header_valid("Content-Disposition", cd), "and the value is a valid header");
    free(cd);
    cd = e2b_files_content_disposition("q\"uo\\te%.txt");
    is_str(cd, "attachment; filename=\"q_uo_te_.txt\"; filename*=UTF-8''q%22uo%5Cte%25.txt",
           "quotes, backslash and percent cannot break the quoting");
    free(cd);
    cd = e2b_files_content_disposition("caf\xc3\xa9.txt");
    is_str(cd, "attachment; filename=\"caf__.txt\"; filename*=UTF-8''caf%C3%A9.txt", "UTF-8 name");
    free(cd);
    ok(e2b_files_is_upload_temp(".data.csv.e2b-upload-Ab12Cd"), "an upload's temp file");
    ok(!e2b_files_is_upload_temp("data.csv"), "a plain name");
    ok(!e2b_files_is_upload_temp(".e2b-upload-Ab12Cd"), "the mark alone is no temp file");
    ok(!e2b_files_is_upload_temp(".x.e2b-upload-Ab12Cd.bak"), "the mark in the middle");
    return tap_done();
}
