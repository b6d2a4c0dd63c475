#include "report/junit.h"

#include <errno.h>
#include <string.h>

static void xml_escaped(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        default:
            /* XML 1.0 has no place for other control characters. */
            if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t')
                fputc(*s, out);
        }
    }
}

int junit_write(const char *path, const char *suite, const struct check *c, size_t n,
                double seconds, struct gp_error *err)
{
    FILE *out = fopen(path, "we");
    if (!out) {
        gp_error_set(err, GP_ERR_OUTPUT, "cannot write %s: %s; choose a writable --junit path",
                     path, strerror(errno));
        return err->code;
    }
    size_t failures = 0, errors = 0;
    for (size_t i = 0; i < n; i++) {
        failures += c[i].outcome == CHECK_FAILED;
        errors += c[i].outcome == CHECK_NOT_MEASURED;
    }
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(out, "<testsuites name=\"gilprobe\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
            "time=\"%.3f\">\n", n, failures, errors, seconds);
    fprintf(out, "  <testsuite name=\"gilprobe: ");
    xml_escaped(out, suite);
    fprintf(out, "\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"0\" time=\"%.3f\">\n",
            n, failures, errors, seconds);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "    <testcase classname=\"gilprobe.fail_on\" name=\"");
        xml_escaped(out, c[i].expr);
        fprintf(out, "\" time=\"0\">");
        if (c[i].outcome != CHECK_PASSED) {
            const char *tag = c[i].outcome == CHECK_FAILED ? "failure" : "error";
            fprintf(out, "\n      <%s type=\"%s\" message=\"", tag,
                    c[i].outcome == CHECK_FAILED ? "check failed" : "not measured");
            xml_escaped(out, c[i].expr);
            fputs(": measured ", out);
            xml_escaped(out, c[i].measured);
            fputs("\">the run's ", out);
            xml_escaped(out, c[i].expr);
            fputs(" was ", out);
            xml_escaped(out, c[i].measured);
            fprintf(out, "</%s>\n    ", tag);
        }
        fprintf(out, "</testcase>\n");
    }
    fprintf(out, "  </testsuite>\n</testsuites>\n");
    int bad = ferror(out);
    if (fclose(out) != 0 || bad) {
        gp_error_set(err, GP_ERR_OUTPUT, "cannot write %s: %s", path, strerror(errno));
        return err->code;
    }
    return GP_OK;
}

/* Workflow commands want %, CR and LF escaped in the message. */
static void annotation_escaped(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '%')
            fputs("%25", out);
        else if (*s == '\r')
            fputs("%0D", out);
        else if (*s == '\n')
            fputs("%0A", out);
        else
            fputc(*s, out);
    }
}

void github_annotations(FILE *out, const struct check *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (c[i].outcome == CHECK_PASSED)
            continue;
        fputs("::error title=gilprobe check failed::", out);
        annotation_escaped(out, c[i].expr);
        fputs(" (measured ", out);
        annotation_escaped(out, c[i].measured);
        fputs(")\n", out);
    }
    fflush(out);
}
