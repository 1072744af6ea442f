using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>
/// What executing a platform instruction cost: cycles of guest execution (the native cost),
/// cycles spent outside the guest (exit, handler, entry), whether it exited, and a fault.
/// </summary>
public struct PlatformResult
{
    public long GuestCycles;
    public long ExitCycles;
    public bool Exited;
    public bool Halt;
    public GuestFaultKind Fault;

    public static PlatformResult Native(long cycles) => new() { GuestCycles = cycles };

    /// <summary>A fault; the platform explains it through <see cref="Vcpu.ExplainFault"/> first.</summary>
    public static PlatformResult Faulted(GuestFaultKind kind) => new() { Fault = kind };
}

/// <summary>
/// The world a vCPU's platform instructions reach: bare metal (<see cref="NativePlatform"/>)
/// or a hypervisor with its VMX or SVM exit paths. The interpreter calls it for rdtsc,
/// rdtscp, rdpid, rdmsr, wrmsr, cpuid, in, out, hlt and MMIO accesses, always at the
/// instruction's exact instant, and adds the returned cycles.
/// </summary>
public interface IGuestPlatform
{
    /// <summary>
    /// Executes <paramref name="instruction"/> (one of the platform opcodes) for
    /// <paramref name="vcpu"/> at <paramref name="at"/>, reading and writing its registers.
    /// </summary>
    /// <param name="vcpu">The vCPU executing it.</param>
    /// <param name="state">Its registers, read and written in place.</param>
    /// <param name="instruction">The instruction.</param>
    /// <param name="at">Its exact issue instant.</param>
    /// <param name="nativeCycles">What the instruction costs when it runs natively on the current core.</param>
    PlatformResult Execute(Vcpu vcpu, ref CpuState state, in Instruction instruction, SimTime at, long nativeCycles);

    /// <summary>Whether <paramref name="address"/> is MMIO (not RAM).</summary>
    bool IsMmio(long address);

    /// <summary>An MMIO load of <paramref name="size"/> bytes at <paramref name="at"/>.</summary>
    PlatformResult MmioRead(Vcpu vcpu, long address, int size, SimTime at, out long value);

    /// <summary>An MMIO store of <paramref name="size"/> bytes at <paramref name="at"/>.</summary>
    PlatformResult MmioWrite(Vcpu vcpu, long address, int size, long value, SimTime at);

    /// <summary>
    /// The interpreter's fast path for RDTSC: true with the value it returns at
    /// <paramref name="at"/> when it runs now without an exit, costs its native cycles and does
    /// nothing else (no state change, no event, no exit counted), exactly as
    /// <see cref="Execute"/> would; false sends it through <see cref="Execute"/>. Default: false.
    /// </summary>
    bool TryNativeRdtsc(Vcpu vcpu, SimTime at, out ulong value)
    {
        value = 0;
        return false;
    }
}

/// <summary>Receives what a vCPU does that Measurement cares about, in exact true-time order.</summary>
public interface IExecutionObserver
{
    /// <summary>A TSC read (RDTSC, RDTSCP, RDMSR IA32_TSC) returned <paramref name="value"/>.</summary>
    void OnTscRead(Vcpu vcpu, SimTime at, TscValue value, bool exited, long cycles);

    /// <summary>A <c>probe</c> recorded <paramref name="value"/>.</summary>
    void OnProbe(Vcpu vcpu, SimTime at, int line, long value);

    /// <summary>The vCPU stopped with a fault.</summary>
    void OnFault(Vcpu vcpu, GuestFault fault);

    /// <summary>
    /// A guest clock read: the guest kernel's <c>clock_gettime</c> returned
    /// <paramref name="nanoseconds"/> (guest ns since boot) at <paramref name="at"/>.
    /// <paramref name="cycles"/> is what the read cost the vCPU (guest and exit cycles from the
    /// call to the result) and <paramref name="exits"/> how many exits it took.
    /// </summary>
    void OnClockRead(Vcpu vcpu, SimTime at, long nanoseconds, long cycles, int exits);

    /// <summary>
    /// A guest clock read that began at <paramref name="begin"/> (entering the read routine) and
    /// returned at <paramref name="at"/>. Reads of different vCPUs may overlap; an observer that
    /// checks order across vCPUs needs both instants. By default forwards to the other overload.
    /// </summary>
    void OnClockRead(Vcpu vcpu, SimTime begin, SimTime at, long nanoseconds, long cycles, int exits) =>
        OnClockRead(vcpu, at, nanoseconds, cycles, exits);
}

/// <summary>What a guest-kernel service asks of the vCPU that called it.</summary>
public enum KernelCallResult
{
    /// <summary>Go on with the next instruction.</summary>
    Continue,
    /// <summary>
    /// Stop here until the kernel wakes the vCPU (<see cref="Vcpu.Wake"/>): an application
    /// processor waiting for the boot processor to bring it online.
    /// </summary>
    Wait,
}

/// <summary>
/// The model side of a guest kernel: services a guest program enters with <c>kcall N</c>. The
/// instruction is sequenced, so a service runs at its exact instant after every earlier event;
/// it may read and write the caller's registers. Bookkeeping lives here; everything whose cost
/// or timing matters (clock reads, calibration loops, the warp test) is guest code.
/// </summary>
public interface IGuestKernel
{
    /// <summary>
    /// Runs service <paramref name="service"/> for <paramref name="vcpu"/> at <paramref name="at"/>.
    /// <paramref name="cycles"/> and <paramref name="exits"/> are the vCPU's running totals
    /// (guest + exit cycles, exits) up to this instant, so a service can price a stretch of guest code.
    /// </summary>
    KernelCallResult Call(Vcpu vcpu, int service, SimTime at, long cycles, long exits);
}
