using System.Runtime.InteropServices;

namespace TscSim.Cli;

/// <summary>
/// Turns SIGINT (Ctrl-C) and SIGTERM (what Slurm, CI runners and <c>timeout</c> send at a time
/// limit) into a cancellation while a run or sweep is under way: the process is not killed, the
/// run stops at its next step and writes what it has, marked <c>"complete": false</c> (exit 3).
/// </summary>
internal sealed class Interruption : IDisposable
{
    private static readonly List<Interruption> Active = [];
    private readonly CancellationTokenSource _cancel = new();
    private readonly List<PosixSignalRegistration> _registrations = [];
    private int _signal;

    public Interruption()
    {
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
        {
            try
            {
                _registrations.Add(PosixSignalRegistration.Create(signal, context =>
                {
                    context.Cancel = true; // do not terminate: finish the current step, write what we have
                    Raise(context.Signal);
                }));
            }
            catch (PlatformNotSupportedException)
            {
                // this platform cannot catch the signal; it ends the process as before
            }
        }
        lock (Active)
        {
            Active.Add(this);
        }
    }

    /// <summary>Cancelled when a signal arrives.</summary>
    public CancellationToken Token => _cancel.Token;

    /// <summary>The signal that arrived ("SIGTERM"), or null.</summary>
    public string? Signal => _signal == 0 ? null : ((PosixSignal)_signal).ToString();

    private void Raise(PosixSignal signal)
    {
        Interlocked.CompareExchange(ref _signal, (int)signal, 0);
        _cancel.Cancel();
    }

    /// <summary>
    /// Tests: delivers <paramref name="signal"/> to every run or sweep under way in this process,
    /// through the same path as a real signal's handler. Returns how many were under way.
    /// </summary>
    internal static int Deliver(PosixSignal signal)
    {
        lock (Active)
        {
            foreach (var i in Active)
            {
                i.Raise(signal);
            }
            return Active.Count;
        }
    }

    public void Dispose()
    {
        lock (Active)
        {
            Active.Remove(this);
        }
        foreach (var r in _registrations)
        {
            r.Dispose();
        }
        _cancel.Dispose();
    }
}
