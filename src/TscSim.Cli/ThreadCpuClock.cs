using System.Runtime.InteropServices;

namespace TscSim.Cli;

/// <summary>
/// CPU time consumed by the calling thread (Linux <c>clock_gettime(CLOCK_THREAD_CPUTIME_ID)</c>),
/// for <c>tscsim bench</c> on a shared machine: unlike wall time it does not count the time the
/// thread waited for a core while other processes ran, so it compares builds measured under
/// different loads. Edge timing only, never in the model. Null where unavailable.
/// </summary>
internal static partial class ThreadCpuClock
{
    private const int ClockThreadCpuTimeId = 3; // CLOCK_THREAD_CPUTIME_ID (linux/time.h)

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

#pragma warning disable SYSLIB1054 // LibraryImport's generated marshalling needs unsafe code; this signature is blittable
    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clockId, out Timespec time);
#pragma warning restore SYSLIB1054

    /// <summary>The calling thread's CPU seconds so far, or null off Linux or if the call fails.</summary>
    public static double? Seconds()
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }
        try
        {
            return ClockGetTime(ClockThreadCpuTimeId, out Timespec t) == 0 ? t.Seconds + (t.Nanoseconds / 1e9) : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }
}
