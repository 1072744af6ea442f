using System.Globalization;

namespace TscSim.Core.Measurement;

/// <summary>One row of <c>reads.csv</c>: a guest clock read.</summary>
/// <param name="TrueNs">True time of the read, ns since start.</param>
/// <param name="Vm">The VM's id.</param>
/// <param name="Vcpu">The vCPU's index in the VM.</param>
/// <param name="Core">The physical core the vCPU ran on.</param>
/// <param name="Host">The host's id.</param>
/// <param name="ClockNs">The value the guest clock returned, guest ns.</param>
/// <param name="SkewNs">ClockNs − TrueNs.</param>
/// <param name="Exited">Whether the read took an exit.</param>
/// <param name="Cycles">What the read cost the vCPU, in core cycles (exits included).</param>
public readonly record struct ReadRow(
    long TrueNs, string Vm, int Vcpu, int Core, string Host, long ClockNs, long SkewNs, bool Exited, long Cycles = 0);

/// <summary>
/// The bounded, decimated series of clock reads behind <c>reads.csv</c>
/// (<c>true_ns,vm,vcpu,core,host,clock_ns,skew_ns,exited,cycles</c>), for plots: at most
/// <see cref="Capacity"/> rows however long the run, chosen deterministically.
/// </summary>
/// <remarks>
/// <para>Decimation. Each vCPU's reads are numbered 0, 1, 2, … in arrival order (per vCPU, so
/// vCPUs reading in turn do not alias onto the stride: a global numbering kept only one vCPU's
/// reads when two alternated). With stride k (initially 1) read i is kept when i is a multiple of k. When a kept read finds the buffer (Capacity − 1
/// rows) full, the buffer is compacted: k doubles and the rows whose number is not a multiple of
/// the new k are dropped (about every other row); the read is then kept only if its number is a
/// multiple of the new k. So the rows are always every k-th read from the first, evenly spaced in
/// read count (not in time: bursts of reads get more rows), and the same reads give the same rows.
/// Read 0 (the first) is always kept, and the most recent read is kept in a slot of its own and
/// written last, so the file always spans the whole run.</para>
/// <para>Pinned rows. A read added with <c>pin: true</c> (the caller passes the monotonicity
/// verdict, e.g. <see cref="VmRecorder.OnClockRead(int, long, long, long, long, int)"/>'s result) is kept whatever its number and
/// survives compactions, so backward steps appear in the plot. At most Capacity / 4 rows are
/// pinned; later pins are treated as ordinary reads. Nothing else (gaps, migrations) is pinned.</para>
/// <para>Vm and host names are registered once (<see cref="RegisterVm"/>,
/// <see cref="RegisterHost"/>) and rows hold their small integer ids: <see cref="Add"/> never
/// allocates, and memory is fixed at construction.</para>
/// </remarks>
public sealed class ReadSeries
{
    /// <summary>The CSV header line (without line end).</summary>
    public const string Header = "true_ns,vm,vcpu,core,host,clock_ns,skew_ns,exited,cycles";

    /// <summary>The smallest capacity accepted.</summary>
    public const int MinCapacity = 8;

    /// <summary>vCPUs per VM the per-vCPU numbering has room for (the scenario limit).</summary>
    public const int MaxVcpusPerVm = 64;

    private struct Stored
    {
        public long Index;
        public long Number;     // the read's number among its own vCPU's reads: what decimation uses
        public long TrueNs;
        public long ClockNs;
        public int Vm;
        public int Vcpu;
        public int Core;
        public int Host;
        public bool Exited;
        public bool Pinned;
        public long Cycles;
    }

    private readonly Stored[] _rows;
    private readonly int _pinBudget;
    private readonly List<string> _vms = [];
    private readonly List<string> _hosts = [];
    private int _count;
    private int _pinned;
    private long _stride = 1; // 1, doubled by each compaction: always a power of two
    private long _reads;
    private Stored _last;
    private long[] _perVcpu = [];

    /// <summary>A series of at most <paramref name="capacity"/> rows (at least <see cref="MinCapacity"/>; e.g. 20000).</summary>
    public ReadSeries(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, MinCapacity);
        Capacity = capacity;
        _rows = new Stored[capacity - 1];
        _pinBudget = capacity / 4;
    }

    /// <summary>The most rows the series ever holds (and writes).</summary>
    public int Capacity { get; }

    /// <summary>How many reads have been added.</summary>
    public long Reads => _reads;

    /// <summary>The current stride k: ordinary rows are the reads whose number is a multiple of k.</summary>
    public long Stride => _stride;

    /// <summary>How many rows <see cref="WriteCsv"/> would write now (at most <see cref="Capacity"/>).</summary>
    public int Count => _reads == 0 ? 0 : _count + (LastIsStored ? 0 : 1);

    private bool LastIsStored => _count > 0 && _rows[_count - 1].Index == _last.Index;

    /// <summary>The id of VM <paramref name="name"/> for <see cref="Add"/>, registering it the first time.</summary>
    public int RegisterVm(string name)
    {
        int id = Register(_vms, name);
        if (_perVcpu.Length < _vms.Count * MaxVcpusPerVm)
        {
            Array.Resize(ref _perVcpu, _vms.Count * MaxVcpusPerVm);
        }
        return id;
    }

    /// <summary>The id of host <paramref name="name"/> for <see cref="Add"/>, registering it the first time.</summary>
    public int RegisterHost(string name) => Register(_hosts, name);

    private static int Register(List<string> names, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        int i = names.IndexOf(name);
        if (i >= 0)
        {
            return i;
        }
        names.Add(name);
        return names.Count - 1;
    }

    /// <summary>
    /// Adds a clock read (ids from <see cref="RegisterVm"/> and <see cref="RegisterHost"/>);
    /// <paramref name="pin"/> keeps it whatever the decimation (within the pin budget).
    /// Reads must be added in true-time order. Does not allocate.
    /// </summary>
    public void Add(long trueNs, int vm, int vcpu, int core, int host, long clockNs, bool exited, bool pin = false, long cycles = 0)
    {
        if ((uint)vm >= (uint)_vms.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(vm), vm, "Unregistered VM id.");
        }
        if ((uint)host >= (uint)_hosts.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(host), host, "Unregistered host id.");
        }
        if ((uint)vcpu >= MaxVcpusPerVm)
        {
            throw new ArgumentOutOfRangeException(nameof(vcpu), vcpu, $"At most {MaxVcpusPerVm} vCPUs per VM.");
        }
        var row = new Stored
        {
            Index = _reads,
            Number = _perVcpu[vm * MaxVcpusPerVm + vcpu]++,
            TrueNs = trueNs,
            ClockNs = clockNs,
            Vm = vm,
            Vcpu = vcpu,
            Core = core,
            Host = host,
            Exited = exited,
            Cycles = cycles,
        };
        _reads++;
        _last = row;

        if (pin && _pinned < _pinBudget)
        {
            row.Pinned = true;
        }
        else if ((row.Number & (_stride - 1)) != 0) // the stride is a power of two: a mask, not a division
        {
            return;
        }
        while (_count == _rows.Length)
        {
            int before = _count;
            Compact();
            if (_count == before)
            {
                return; // every stored row is a vCPU's first read or pinned (more vCPUs than rows): keep those
            }
        }
        if (row.Pinned)
        {
            _pinned++;
        }
        else if ((row.Number & (_stride - 1)) != 0) // the stride is a power of two: a mask, not a division
        {
            return; // compaction raised the stride past this read
        }
        _rows[_count++] = row;
    }

    // Doubles the stride and keeps pinned rows and rows whose number is a multiple of it. Frees at
    // least one row: the buffer holds every multiple of the old stride up to the latest kept read
    // plus at most Capacity / 4 pins, so some odd multiple of the old stride is unpinned (Add
    // repeats the compaction until there is room all the same).
    private void Compact()
    {
        _stride = checked(_stride * 2);
        int kept = 0;
        for (int i = 0; i < _count; i++)
        {
            if (_rows[i].Pinned || _rows[i].Number % _stride == 0)
            {
                _rows[kept++] = _rows[i];
            }
        }
        Array.Clear(_rows, kept, _count - kept);
        _count = kept;
    }

    /// <summary>The rows <see cref="WriteCsv"/> writes, in read order (allocates; for reports and tests).</summary>
    public IReadOnlyList<ReadRow> GetRows()
    {
        var list = new List<ReadRow>(Count);
        for (int i = 0; i < _count; i++)
        {
            list.Add(ToRow(_rows[i]));
        }
        if (_reads > 0 && !LastIsStored)
        {
            list.Add(ToRow(_last));
        }
        return list;
    }

    private ReadRow ToRow(in Stored s) =>
        new(s.TrueNs, _vms[s.Vm], s.Vcpu, s.Core, _hosts[s.Host], s.ClockNs, VcpuRecorder.SaturatedSkew(s.ClockNs, s.TrueNs), s.Exited, s.Cycles);

    /// <summary>
    /// Writes the header and the rows as CSV: invariant culture, integers in decimal, names quoted
    /// only if they contain a comma, quote or line break (RFC 4180), <c>exited</c> as 0 or 1,
    /// lines ended by <c>\n</c> on every platform. The same reads always give the same text.
    /// </summary>
    public void WriteCsv(TextWriter writer, bool header = true)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (header)
        {
            writer.Write(Header);
            writer.Write('\n');
        }
        foreach (ReadRow row in GetRows())
        {
            writer.Write(row.TrueNs.ToString(CultureInfo.InvariantCulture));
            writer.Write(',');
            WriteName(writer, row.Vm);
            writer.Write(',');
            writer.Write(row.Vcpu.ToString(CultureInfo.InvariantCulture));
            writer.Write(',');
            writer.Write(row.Core.ToString(CultureInfo.InvariantCulture));
            writer.Write(',');
            WriteName(writer, row.Host);
            writer.Write(',');
            writer.Write(row.ClockNs.ToString(CultureInfo.InvariantCulture));
            writer.Write(',');
            writer.Write(row.SkewNs.ToString(CultureInfo.InvariantCulture));
            writer.Write(',');
            writer.Write(row.Exited ? '1' : '0');
            writer.Write(',');
            writer.Write(row.Cycles.ToString(CultureInfo.InvariantCulture));
            writer.Write('\n');
        }
    }

    private static void WriteName(TextWriter writer, string name)
    {
        if (name.AsSpan().IndexOfAny(",\"\r\n") < 0)
        {
            writer.Write(name);
            return;
        }
        writer.Write('"');
        writer.Write(name.Replace("\"", "\"\"", StringComparison.Ordinal));
        writer.Write('"');
    }
}
