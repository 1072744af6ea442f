/*
 * The real RDTSC rate of this machine, the reference `tscsim bench` compares TscSim's
 * non-exiting RDTSC loop with: a tight loop of RDTSC (the compiler intrinsic __rdtsc, one
 * RDTSC instruction), timed with CLOCK_MONOTONIC. Built with gcc -O2 by build.sh.
 *
 * Usage: rdtsc_rate [ITERATIONS]   (default 50,000,000)
 * Prints one line: "<iterations> <seconds> <rdtsc per second>".
 * The sum of the values is kept live (printed to stderr only if a never-true condition holds)
 * so the compiler cannot drop the loop; RDTSC is volatile in GCC's intrinsic anyway.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 50000000ULL;
    if (n == 0) {
        fprintf(stderr, "rdtsc_rate: ITERATIONS must be a positive integer\n");
        return 2;
    }
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n / 10; i++) /* warm-up: frequency ramp, page faults */
        sum += __rdtsc();
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (uint64_t i = 0; i < n; i++)
        sum += __rdtsc();
    clock_gettime(CLOCK_MONOTONIC, &b);
    double seconds = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
    if (sum == 42)
        fprintf(stderr, "%llu\n", (unsigned long long)sum);
    printf("%llu %.9f %.0f\n", (unsigned long long)n, seconds, (double)n / seconds);
    return 0;
}
