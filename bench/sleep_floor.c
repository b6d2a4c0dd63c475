/* The cost of waking up at a fixed rate and doing nothing else: the floor
 * under any sampler's CPU time at that rate on this machine (on a VM each
 * timer arm can cost tens of microseconds). Prints the CPU microseconds per
 * wake-up, exact from the scheduler's own runtime (/proc/self/schedstat).
 * Usage: sleep_floor RATE_HZ SECONDS */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static unsigned long long runtime_ns(void)
{
    unsigned long long ns = 0;
    FILE *f = fopen("/proc/self/schedstat", "r");
    if (f) {
        if (fscanf(f, "%llu", &ns) != 1)
            ns = 0;
        fclose(f);
    }
    return ns;
}

int main(int argc, char **argv)
{
    double rate = argc > 1 ? atof(argv[1]) : 1000;
    double seconds = argc > 2 ? atof(argv[2]) : 2;
    if (rate <= 0 || seconds <= 0) {
        fprintf(stderr, "usage: sleep_floor RATE_HZ SECONDS\n");
        return 2;
    }
    long period_ns = (long)(1e9 / rate);
    long n = (long)(rate * seconds);
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    unsigned long long before = runtime_ns();
    for (long i = 0; i < n; i++) {
        t.tv_nsec += period_ns;
        while (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
    }
    printf("%.3f\n", (double)(runtime_ns() - before) / 1e3 / (double)n);
    return 0;
}
