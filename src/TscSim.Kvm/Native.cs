using System.Runtime.InteropServices;

namespace TscSim.Kvm;

/// <summary>The few libc calls the real-KVM runner needs (Linux x86-64 only).</summary>
internal static partial class Native
{
    public const int ORdWr = 2, OCloexec = 0x80000;
    public const int ProtRead = 1, ProtWrite = 2;
    public const int MapShared = 0x01, MapPrivate = 0x02, MapAnonymous = 0x20, MapNoReserve = 0x4000;
    public const int ClockMonotonicRaw = 4;
    public const int Eintr = 4;

    [StructLayout(LayoutKind.Sequential)]
    public struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    /// <summary><c>ioctl(fd, request, arg)</c>: arg is an integer or a pointer (ioctl is variadic; one word argument is passed the same way on x86-64).</summary>
    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, nuint request, nint arg);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint address, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint address, nuint length);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    public static partial nint Pread(int fd, nint buffer, nuint count, nint offset);

    [LibraryImport("libc", EntryPoint = "clock_gettime", SetLastError = true)]
    public static partial int ClockGettime(int clock, out Timespec time);

    /// <summary>CLOCK_MONOTONIC_RAW in ns (the clock KVM's kvmclock counts in: get_kvmclock_base_ns).</summary>
    public static long MonotonicRawNs()
    {
        if (ClockGettime(ClockMonotonicRaw, out var t) != 0)
        {
            throw new KvmException("clock_gettime(CLOCK_MONOTONIC_RAW)", Marshal.GetLastPInvokeError());
        }
        return t.Seconds * 1_000_000_000 + t.Nanoseconds;
    }
}

/// <summary>A failed KVM or libc call: which call, and errno.</summary>
public sealed class KvmException(string call, int errno)
    : Exception($"{call} failed: errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})")
{
    public string Call { get; } = call;

    public int Errno { get; } = errno;
}
