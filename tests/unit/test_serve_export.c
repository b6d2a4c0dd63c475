/* `gilprobe serve`'s pure parts: the cgroup path parser (container id, pod
 * UID), the fleet's totals (bounded labels, garbage lines) and the
 * exposition (cumulative buckets, escaping, OpenMetrics' EOF). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "report/fleet.h"
#include "target/cgroup_ids.h"
#include "target/uretprobe_safety.h"

#define CID "3f2a9c0d1e4b5a6978c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3"

static void test_cgroup_ids(void **state)
{
    (void)state;
    struct cgroup_ids ids;
    /* systemd driver, containerd: pod UID with underscores in the slice name */
    cgroup_ids_parse("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1d2c3b4a_"
                     "5e6f_7a8b_9c0d_1e2f3a4b5c6d.slice/cri-containerd-" CID ".scope\n",
                     &ids);
    assert_string_equal(ids.container_id, CID);
    assert_string_equal(ids.pod_uid, "1d2c3b4a-5e6f-7a8b-9c0d-1e2f3a4b5c6d");
    /* cgroupfs driver, docker, cgroup v1 lines */
    cgroup_ids_parse("12:memory:/kubepods/besteffort/pod0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D/" CID
                     "\n11:cpu:/kubepods/besteffort/pod0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D/" CID "\n",
                     &ids);
    assert_string_equal(ids.container_id, CID);
    assert_string_equal(ids.pod_uid, "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d");
    cgroup_ids_parse("0::/system.slice/docker-" CID ".scope\n", &ids);
    assert_string_equal(ids.container_id, CID);
    assert_string_equal(ids.pod_uid, "");
    /* a host process; 65 hex digits are no id; "pod" without a UID */
    cgroup_ids_parse("0::/user.slice/user-0.slice/session-3.scope\n", &ids);
    assert_string_equal(ids.container_id, "");
    cgroup_ids_parse("0::/x/" CID "a/podcast.slice\n", &ids);
    assert_string_equal(ids.container_id, "");
    assert_string_equal(ids.pod_uid, "");
    cgroup_ids_parse(NULL, &ids);
    assert_string_equal(ids.container_id, "");
}

static void test_uretprobe_kernels(void **state)
{
    (void)state;
    assert_false(kernel_uretprobe_kills_seccomp("6.10.14-amd64"));
    assert_true(kernel_uretprobe_kills_seccomp("6.11.0"));
    assert_true(kernel_uretprobe_kills_seccomp("6.12.9-amd64"));
    assert_true(kernel_uretprobe_kills_seccomp("6.13.12-200.fc41.x86_64"));
    assert_false(kernel_uretprobe_kills_seccomp("6.14.0"));
    assert_false(kernel_uretprobe_kills_seccomp("6.18.44-fc-v782"));
    assert_false(kernel_uretprobe_kills_seccomp("5.15.0-91-generic"));
    assert_false(kernel_uretprobe_kills_seccomp("7.1.0"));
    assert_false(kernel_uretprobe_kills_seccomp("garbage"));
    assert_false(kernel_uretprobe_kills_seccomp(NULL));
}

static char *render(const struct fleet *f, bool om)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    fleet_render(f, om, out);
    fclose(out);
    return buf;
}

static void test_fleet_totals_and_exposition(void **state)
{
    (void)state;
    struct fleet f;
    fleet_init(&f);
    struct fleet_target *t = fleet_target(&f, 42);
    assert_true(fleet_apply_line(t, "{\"pid\":42,\"exe\":\"/usr/bin/py\\\"x\",\"python_version\":"
                                    "\"3.12.1\",\"free_threaded\":false}"));
    char line[2048];
    for (int s = 0; s < 3; s++) {
        snprintf(line, sizeof line,
                 "{\"window_s\":1,\"samples\":10,\"errors\":{\"missed_tick\":1},"
                 "\"python_threads\":5,\"gil\":{\"exact\":true,\"held_s\":0.5,\"acquisitions\":7,"
                 "\"wait_count\":2,\"wait_sum_s\":0.01,\"wait_le\":[0,0,0,0,0,1,1,0,0,0,0,0,0,0,0,0,0],"
                 "\"hold_count\":0,\"hold_sum_s\":0,\"hold_le\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]},"
                 "\"threads\":[{\"name\":\"w\",\"states\":{\"gil_wait\":0.25},\"gil_wait_s\":0.25}],"
                 "\"locks\":[],\"loops\":[{\"busy_s\":0.3,\"stalls_s\":[0.3]}]}");
        assert_true(fleet_apply_line(t, line));
    }
    /* garbage and negative seconds change nothing */
    assert_false(fleet_apply_line(t, "{\"gil\":"));
    assert_false(fleet_apply_line(t, "[1,2]"));
    assert_true(fleet_apply_line(t, "{\"gil\":{\"held_s\":-5},\"samples\":-3}"));
    assert_true(t->held_s == 1.5);
    assert_int_equal(t->samples, 30);
    /* thread labels are bounded: the 17th name and later go to "other" */
    for (int i = 0; i < 40; i++) {
        snprintf(line, sizeof line, "{\"gil\":{},\"threads\":[{\"name\":\"t%d\",\"gil_wait_s\":1}]}",
                 i);
        fleet_apply_line(t, line);
    }
    assert_int_equal(t->nthreads, FLEET_THREAD_LABELS);
    assert_string_equal(t->threads[FLEET_THREAD_LABELS].name, "other");
    assert_true(t->threads[FLEET_THREAD_LABELS].gil_wait_s == 40 - (FLEET_THREAD_LABELS - 1));

    char *text = render(&f, false);
    assert_non_null(strstr(text, "# TYPE gilprobe_gil_held_seconds_total counter\n"));
    assert_non_null(strstr(text, "exe=\"/usr/bin/py\\\"x\""));
    /* cumulative buckets: 0 up to 0.0025, 3 at 0.005, 6 from 0.01 on */
    assert_non_null(strstr(text, "le=\"0.0025\"} 0\n"));
    assert_non_null(strstr(text, "le=\"0.005\"} 3\n"));
    assert_non_null(strstr(text, "le=\"+Inf\"} 6\n"));
    assert_non_null(strstr(text, "gilprobe_asyncio_loop_stall_duration_seconds_count{"));
    assert_null(strstr(text, "# EOF"));
    free(text);
    text = render(&f, true);
    assert_non_null(strstr(text, "# TYPE gilprobe_gil_held_seconds counter\n"));
    assert_non_null(strstr(text, "# TYPE gilprobe_target info\n"));
    assert_int_equal(strcmp(text + strlen(text) - 6, "# EOF\n"), 0);
    free(text);
    /* a target that went: its series go */
    fleet_remove(&f, 42);
    text = render(&f, false);
    assert_null(strstr(text, "pid=\"42\""));
    free(text);
    fleet_free(&f);
}

int run_serve_export_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cgroup_ids),
        cmocka_unit_test(test_uretprobe_kernels),
        cmocka_unit_test(test_fleet_totals_and_exposition),
    };
    return cmocka_run_group_tests_name("serve export", tests, NULL, NULL);
}
