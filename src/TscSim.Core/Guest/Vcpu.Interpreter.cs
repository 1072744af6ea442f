using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TscSim.Core.Abi;
using TscSim.Core.Engine;
using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>The interpreter: one <c>switch</c> over the dense opcode, allocation-free.</summary>
public sealed partial class Vcpu
{
    // Fully optimised at once: the interpreter loop is one long-running method whose dynamic
    // profile (Tiered PGO) depends on whichever program ran first; a PGO build tuned for one
    // instruction mix was measured 40% slower on another, so the loop opts out of tiering.
    /// <summary>
    /// The instruction loop. Register-only instructions (moves, ALU, shifts, multiplies, jumps,
    /// fences) run here with the instruction index, the cycle count and the budget in locals;
    /// every other instruction (memory, atomics, platform and kernel instructions, <c>work</c>,
    /// anything that can fault or change the budget) goes to <see cref="ExecuteOne"/> with the
    /// slice state written back, and the locals are reloaded after it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private Step Execute(ref Slice sl)
    {
        unchecked
        {
            Instruction[] code = Program.Code;
            long[] costs = Core.Model.CostCycles;
            ref CpuState s = ref _state;
            ref long regs = ref Unsafe.As<RegisterFile, long>(ref s.Regs);
            int rip = s.Rip;
            long k = sl.K;           // sl.K, kept here between syncs
            // Only the instruction index and the cycle count live in locals: the budget and the
            // retired count stay in the slice (sl.K, the cycle count at the last sync, is what
            // sl.Guest already holds), so the loop's few locals keep their registers.

            while (true)
            {
                if ((uint)rip >= (uint)code.Length)
                {
                    goto General; // ExecuteOne reports it
                }
                ref Instruction i = ref code[rip];
                ref long a = ref Unsafe.Add(ref regs, i.A);
                ref long b = ref Unsafe.Add(ref regs, i.B);
                long r;

                switch (i.Op)
                {
                    case Opcode.MovRR: a = b; rip++; break;
                    case Opcode.MovRI: a = i.Imm; rip++; break;
                    case Opcode.Lea: a = Ea(ref regs, in i); rip++; break;
                    case Opcode.XchgRR: (a, b) = (b, a); rip++; break;
                    case Opcode.AddRR: r = unchecked(a + b); s.SetAdd(a, b, r); a = r; rip++; break;
                    case Opcode.AddRI: r = unchecked(a + i.Imm); s.SetAdd(a, i.Imm, r); a = r; rip++; break;
                    case Opcode.SubRR: r = unchecked(a - b); s.SetSub(a, b, r); a = r; rip++; break;
                    case Opcode.SubRI: r = unchecked(a - i.Imm); s.SetSub(a, i.Imm, r); a = r; rip++; break;
                    case Opcode.AndRR: a &= b; s.SetLogic(a); rip++; break;
                    case Opcode.AndRI: a &= i.Imm; s.SetLogic(a); rip++; break;
                    case Opcode.OrRR: a |= b; s.SetLogic(a); rip++; break;
                    case Opcode.OrRI: a |= i.Imm; s.SetLogic(a); rip++; break;
                    case Opcode.XorRR: a ^= b; s.SetLogic(a); rip++; break;
                    case Opcode.XorRI: a ^= i.Imm; s.SetLogic(a); rip++; break;
                    case Opcode.CmpRR: s.SetSub(a, b, unchecked(a - b)); goto CompareAndBranch;
                    case Opcode.CmpRI: s.SetSub(a, i.Imm, unchecked(a - i.Imm)); goto CompareAndBranch;
                    case Opcode.TestRR: s.SetLogic(a & b); goto CompareAndBranch;
                    case Opcode.TestRI:
                        s.SetLogic(a & i.Imm);
                    CompareAndBranch:
                        {
                            // A compare followed by a conditional jump (most branches): when the
                            // compare does not reach the budget, the jump runs in the same
                            // dispatch; its cycles, retirement and budget check follow below.
                            if (i.BranchFollows)
                            {
                                long cost = costs[(int)i.Cost];
                                if (k + cost < sl.Budget)
                                {
                                    k += cost;
                                    sl.Retired++;
                                    rip++;
                                    i = ref code[rip];
                                    rip = TakenAfterCompare(ref s, i.Op) ? i.Target : rip + 1;
                                    break;
                                }
                            }
                            rip++;
                            break;
                        }
                    case Opcode.Inc:
                        {
                            bool cf = s.CF;
                            long old = a;
                            a = unchecked(a + 1);
                            s.SetExplicit(a, cf, old == long.MaxValue);
                            rip++; break;
                        }
                    case Opcode.Dec:
                        {
                            bool cf = s.CF;
                            long old = a;
                            a = unchecked(a - 1);
                            s.SetExplicit(a, cf, old == long.MinValue);
                            rip++; break;
                        }
                    case Opcode.Neg: r = unchecked(-a); s.SetSub(0, a, r); a = r; rip++; break;
                    case Opcode.Not: a = ~a; rip++; break;
                    case Opcode.ShlRI: Shift(ref s, ref a, i.Op, (int)i.Imm); rip++; break;
                    case Opcode.ShrRI: Shift(ref s, ref a, i.Op, (int)i.Imm); rip++; break;
                    case Opcode.SarRI: Shift(ref s, ref a, i.Op, (int)i.Imm); rip++; break;
                    case Opcode.ShlRC:
                    case Opcode.ShrRC:
                    case Opcode.SarRC:
                        Shift(ref s, ref a, i.Op, (int)(Unsafe.Add(ref regs, Registers.Rcx) & 63)); rip++; break;
                    case Opcode.ShrdRRI:
                    case Opcode.ShrdRRC:
                        {
                            int n = i.Op == Opcode.ShrdRRI ? (int)i.Imm : (int)(Unsafe.Add(ref regs, Registers.Rcx) & 63);
                            if (n != 0)
                            {
                                bool cf = ((a >> (n - 1)) & 1) != 0;
                                a = (long)(((ulong)a >> n) | ((ulong)b << (64 - n)));
                                s.SetExplicit(a, cf, false);
                            }
                            rip++; break;
                        }
                    case Opcode.Mul:
                        {
                            ref long rax = ref regs;
                            ulong hi = Math.BigMul((ulong)rax, (ulong)a, out ulong lo);
                            rax = (long)lo;
                            Unsafe.Add(ref regs, Registers.Rdx) = (long)hi;
                            s.SetExplicit((long)lo, hi != 0, hi != 0);
                            rip++; break;
                        }
                    case Opcode.ImulRR:
                    case Opcode.ImulRI:
                        {
                            long src = i.Op == Opcode.ImulRR ? b : i.Imm;
                            long hi = Math.BigMul(a, src, out long lo);
                            bool overflow = hi != (lo >> 63);
                            a = lo;
                            s.SetExplicit(lo, overflow, overflow);
                            rip++; break;
                        }
                    case Opcode.Jmp: rip = i.Target; break;
                    case Opcode.Je: rip = s.ZF ? i.Target : rip + 1; break;
                    case Opcode.Jne: rip = !s.ZF ? i.Target : rip + 1; break;
                    case Opcode.Jb: rip = s.CF ? i.Target : rip + 1; break;
                    case Opcode.Jae: rip = !s.CF ? i.Target : rip + 1; break;
                    case Opcode.Jbe: rip = s.CF || s.ZF ? i.Target : rip + 1; break;
                    case Opcode.Ja: rip = !s.CF && !s.ZF ? i.Target : rip + 1; break;
                    case Opcode.Jl: rip = s.SF != s.OF ? i.Target : rip + 1; break;
                    case Opcode.Jge: rip = s.SF == s.OF ? i.Target : rip + 1; break;
                    case Opcode.Jle: rip = s.ZF || s.SF != s.OF ? i.Target : rip + 1; break;
                    case Opcode.Jg: rip = !s.ZF && s.SF == s.OF ? i.Target : rip + 1; break;
                    case Opcode.Js: rip = s.SF ? i.Target : rip + 1; break;
                    case Opcode.Jns: rip = !s.SF ? i.Target : rip + 1; break;
                    case Opcode.Lfence:
                    case Opcode.Mfence:
                    case Opcode.Pause:
                    case Opcode.Nop:
                        rip++; break;
                    case Opcode.Cli: s.InterruptFlag = false; rip++; break;
                    // --- private memory and the stack, and shared loads and stores that may run at
                    // their instant now (SyncReady's rule): the common cases of the memory
                    // instructions, here; anything else (a shared access past the horizon, MMIO, a
                    // fault) goes to ExecuteOne, which runs the whole instruction (nothing here has
                    // changed state before the goto).
                    case Opcode.MovRM:
                    case Opcode.MovDM:
                    case Opcode.MovzxRB:
                    case Opcode.MovsxRB:
                        {
                            int size = i.Op == Opcode.MovRM ? 8 : i.Op == Opcode.MovDM ? 4 : 1;
                            long addr = Ea(ref regs, in i);
                            if (!_memory.TryPrivate(addr, size, out byte[] buffer, out int offset)
                                && !(_memory.TryShared(addr, size, out buffer, out offset) && MayRunAt(ref sl, sl.Clock.TimeAt(k))))
                            {
                                goto General;
                            }
                            r = GuestMemory.Read(buffer, offset, size);
                            a = i.Op == Opcode.MovsxRB ? (long)(sbyte)(byte)r : r;
                            rip++;
                            break;
                        }
                    case Opcode.MovMR:
                    case Opcode.MovMD:
                    case Opcode.MovMI:
                        {
                            int size = i.Op == Opcode.MovMD ? 4 : 8;
                            long addr = Ea(ref regs, in i);
                            if (!_memory.TryPrivate(addr, size, out byte[] buffer, out int offset)
                                && !(_memory.TryShared(addr, size, out buffer, out offset) && MayRunAt(ref sl, sl.Clock.TimeAt(k))))
                            {
                                goto General;
                            }
                            GuestMemory.Write(buffer, offset, size, i.Op == Opcode.MovMI ? i.Imm : a);
                            rip++;
                            break;
                        }
                    case Opcode.AddRM:
                    case Opcode.SubRM:
                    case Opcode.AndRM:
                    case Opcode.OrRM:
                    case Opcode.XorRM:
                    case Opcode.CmpRM:
                    case Opcode.TestRM:
                        {
                            long addr = Ea(ref regs, in i);
                            if (!_memory.TryPrivate(addr, 8, out byte[] buffer, out int offset)
                                && !(_memory.TryShared(addr, 8, out buffer, out offset) && MayRunAt(ref sl, sl.Clock.TimeAt(k))))
                            {
                                goto General;
                            }
                            AluWithMemory(ref s, i.Op, ref a, GuestMemory.Read(buffer, offset, 8));
                            rip++;
                            break;
                        }
                    case Opcode.PushR:
                    case Opcode.PopR:
                        {
                            // A run of register pushes or pops (GuestProgram.StackRuns): when the
                            // whole range is private and no instruction before the run's last
                            // reaches the budget, all but the last run here at once, in order,
                            // with their cycles and retired count; the last goes on below as usual.
                            int n = Program.StackRuns[rip];
                            if (n > 1)
                            {
                                long cost = costs[(int)i.Cost];
                                long before = (n - 1) * cost;
                                ref long rsp = ref Unsafe.Add(ref regs, Registers.Rsp);
                                long low = i.Op == Opcode.PushR ? rsp - (8L * n) : rsp;
                                if (k + before < sl.Budget && _memory.TryPrivate(low, 8 * n, out byte[] buffer, out int offset))
                                {
                                    RunStack(ref regs, code, rip, n - 1, buffer, offset, i.Op == Opcode.PushR);
                                    k += before;
                                    sl.Retired += n - 1;
                                    rip += n - 1;
                                    i = ref code[rip];
                                    a = ref Unsafe.Add(ref regs, i.A);
                                }
                            }
                            goto case Opcode.PushI;
                        }
                    case Opcode.PushI:
                    case Opcode.Call:
                        {
                            if (i.Op == Opcode.PopR)
                            {
                                goto PopOrRet;
                            }
                            ref long rsp = ref Unsafe.Add(ref regs, Registers.Rsp);
                            if (!_memory.TryPrivate(rsp - 8, 8, out byte[] buffer, out int offset))
                            {
                                goto General;
                            }
                            GuestMemory.Write(buffer, offset, 8,
                                i.Op == Opcode.Call ? GuestAddressMap.CodeBase + rip + 1 : i.Op == Opcode.PushR ? a : i.Imm);
                            rsp -= 8;
                            rip = i.Op == Opcode.Call ? i.Target : rip + 1;
                            break;
                        }
                    case Opcode.Ret:
                        PopOrRet:
                        {
                            ref long rsp = ref Unsafe.Add(ref regs, Registers.Rsp);
                            if (!_memory.TryPrivate(rsp, 8, out byte[] buffer, out int offset))
                            {
                                goto General;
                            }
                            r = GuestMemory.Read(buffer, offset, 8);
                            if (i.Op == Opcode.PopR)
                            {
                                rsp += 8;
                                a = r; // after the increment: pop rsp loads the popped value
                                rip++;
                                break;
                            }
                            long target = r - GuestAddressMap.CodeBase;
                            if ((ulong)target >= (ulong)code.Length)
                            {
                                goto General; // the fault
                            }
                            rsp += 8;
                            rip = (int)target;
                            break;
                        }
                    case Opcode.Rdtsc when _bareMetal:
                        {
                            // Bare metal's RDTSC (NativePlatform.Execute's case, inline): the core's
                            // TSC at the issue instant, never an exit, no event scheduled, so no
                            // platform call, no result struct and no horizon refresh. At or past the
                            // horizon ExecuteOne yields to its instant.
                            long t = sl.Clock.TimeAt(k);
                            if (!MayRunAt(ref sl, t))
                            {
                                goto General;
                            }
                            RetireNativeRdtsc(ref regs, t, Core.ReadTsc(SimTime.FromPicosecondsTrusted(t)).Raw, costs[(int)i.Cost]);
                            rip++;
                            break;
                        }
                    case Opcode.Rdtsc:
                        {
                            // A platform's RDTSC that runs in guest mode (IGuestPlatform.TryNativeRdtsc):
                            // the same, through one call; one that exits goes to ExecuteOne.
                            long t = sl.Clock.TimeAt(k);
                            if (!MayRunAt(ref sl, t) || !Platform.TryNativeRdtsc(this, SimTime.FromPicosecondsTrusted(t), out ulong v))
                            {
                                goto General;
                            }
                            RetireNativeRdtsc(ref regs, t, v, costs[(int)i.Cost]);
                            rip++;
                            break;
                        }

                    default:
                        goto General;
                }

                // k < sl.Budget ≤ 2^62 before the instruction and a cost is small: no overflow.
                k += costs[(int)i.Cost];
                sl.Retired++;
                if (k < sl.Budget)
                {
                    continue;
                }
                s.Rip = rip;
                sl.Guest += k - sl.K;
                sl.K = k;
                sl.YieldAt = sl.Clock.TimeAt(k);
                return Step.Yield;

            General:
                s.Rip = rip;
                sl.Guest += k - sl.K;
                sl.K = k;
                Step st = ExecuteOne(ref sl);
                if (st != Step.Continue)
                {
                    return st;
                }
                rip = s.Rip;
                k = sl.K;
            }
        }
    }

    /// <summary>
    /// One instruction that is not register-only (see <see cref="Execute"/>), with its cycle
    /// accounting: <see cref="Step.Continue"/> to go on, or the slice's end.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private Step ExecuteOne(ref Slice sl)
    {
        unchecked
        {
            Instruction[] code = Program.Code;
            long[] costs = Core.Model.CostCycles;
            ref CpuState s = ref _state;
            ref long regs = ref Unsafe.As<RegisterFile, long>(ref s.Regs);
            Simulator sim = _executor.Simulator;
            if ((uint)s.Rip >= (uint)code.Length)
            {
                return StopLeftProgram(ref sl, s.Rip, code.Length);
            }
            ref Instruction i = ref code[s.Rip];
            ref long a = ref Unsafe.Add(ref regs, i.A);
            ref long b = ref Unsafe.Add(ref regs, i.B);
            long r;
            Step st;

            switch (i.Op)
            {
                // --- data movement
                case Opcode.MovRM:
                    st = Load(ref sl, in i, Ea(ref regs, in i), 8, out r);
                    if (st != Step.Continue) { return st; }
                    a = r; s.Rip++; break;
                case Opcode.MovDM:
                    st = Load(ref sl, in i, Ea(ref regs, in i), 4, out r);
                    if (st != Step.Continue) { return st; }
                    a = (long)(uint)r; s.Rip++; break;
                case Opcode.MovzxRB:
                    st = Load(ref sl, in i, Ea(ref regs, in i), 1, out r);
                    if (st != Step.Continue) { return st; }
                    a = (long)(byte)r; s.Rip++; break;
                case Opcode.MovsxRB:
                    st = Load(ref sl, in i, Ea(ref regs, in i), 1, out r);
                    if (st != Step.Continue) { return st; }
                    a = (long)(sbyte)(byte)r; s.Rip++; break;
                case Opcode.MovMR:
                    st = Store(ref sl, in i, Ea(ref regs, in i), 8, a);
                    if (st != Step.Continue) { return st; }
                    s.Rip++; break;
                case Opcode.MovMD:
                    st = Store(ref sl, in i, Ea(ref regs, in i), 4, a);
                    if (st != Step.Continue) { return st; }
                    s.Rip++; break;
                case Opcode.MovMI:
                    st = Store(ref sl, in i, Ea(ref regs, in i), 8, i.Imm);
                    if (st != Step.Continue) { return st; }
                    s.Rip++; break;
                case Opcode.XchgRM:
                    st = Atomic(ref sl, in i, ref s, Ea(ref regs, in i), ref a, AtomicOp.Xchg);
                    if (st != Step.Continue) { return st; }
                    s.Rip++; break;
                case Opcode.PushR:
                case Opcode.PushI:
                    st = Push(ref sl, ref regs, in i, i.Op == Opcode.PushR ? a : i.Imm);
                    if (st != Step.Continue) { return st; }
                    s.Rip++; break;
                case Opcode.PopR:
                    st = Pop(ref sl, ref regs, in i, out r);
                    if (st != Step.Continue) { return st; }
                    a = r; s.Rip++; break;

                // --- ALU
                case Opcode.AddRM:
                case Opcode.SubRM:
                case Opcode.AndRM:
                case Opcode.OrRM:
                case Opcode.XorRM:
                case Opcode.CmpRM:
                case Opcode.TestRM:
                    st = Load(ref sl, in i, Ea(ref regs, in i), 8, out r);
                    if (st != Step.Continue) { return st; }
                    AluWithMemory(ref s, i.Op, ref a, r);
                    s.Rip++; break;
                case Opcode.Div:
                    {
                        ulong divisor = (ulong)a;
                        ref long rax = ref regs;
                        ref long rdx = ref Unsafe.Add(ref regs, Registers.Rdx);
                        if (divisor == 0 || (ulong)rdx >= divisor)
                        {
                            return Stop(ref sl, GuestFaultKind.DivideError, s.Rip, i.Line,
                                divisor == 0 ? "division by zero" : "quotient does not fit in 64 bits (rdx >= divisor)");
                        }
                        UInt128 dividend = ((UInt128)(ulong)rdx << 64) | (ulong)rax;
                        rax = (long)(ulong)(dividend / divisor);
                        rdx = (long)(ulong)(dividend % divisor);
                        s.Rip++; break;
                    }

                // --- control flow
                case Opcode.Call:
                    st = Push(ref sl, ref regs, in i, GuestAddressMap.CodeBase + s.Rip + 1);
                    if (st != Step.Continue) { return st; }
                    s.Rip = i.Target; break;
                case Opcode.Ret:
                    st = Pop(ref sl, ref regs, in i, out r);
                    if (st != Step.Continue) { return st; }
                    long target = r - GuestAddressMap.CodeBase;
                    if ((ulong)target >= (ulong)code.Length)
                    {
                        return StopBadReturn(ref sl, s.Rip, i.Line, r);
                    }
                    s.Rip = (int)target; break;

                // --- atomics and ordering
                case Opcode.LockCmpxchg:
                    st = Atomic(ref sl, in i, ref s, Ea(ref regs, in i), ref a, AtomicOp.Cmpxchg);
                    if (st != Step.Continue) { return st; }
                    s.Rip++; break;
                case Opcode.LockXadd:
                    st = Atomic(ref sl, in i, ref s, Ea(ref regs, in i), ref a, AtomicOp.Xadd);
                    if (st != Step.Continue) { return st; }
                    s.Rip++; break;

                // --- pseudo-instructions
                case Opcode.Work:
                    {
                        if (s.WorkRemaining == 0)
                        {
                            s.WorkRemaining = i.Imm;
                        }
                        // Up to the horizon, and at least one cycle so a slice that starts at
                        // the horizon (another event at the same instant) still makes progress.
                        long take = Math.Min(s.WorkRemaining, Math.Max(sl.Budget - sl.K, 1));
                        sl.K += take;
                        sl.Guest += take;
                        s.WorkRemaining -= take;
                        if (s.WorkRemaining == 0)
                        {
                            s.Rip++;
                            sl.Retired++;
                        }
                        if (BudgetSpent(ref sl))
                        {
                            return Step.Yield;
                        }
                        return Step.Continue;
                    }
                case Opcode.Kend:
                    {
                        // After the workload's last instruction: cite that one (the user's line).
                        int last = s.Rip > 0 ? code[s.Rip - 1].Line : i.Line;
                        return Stop(ref sl, GuestFaultKind.RanPastEnd, s.Rip, last,
                            "ran past the end of the workload: execution went on after its last instruction; end the workload with 'hlt' or a 'jmp' back to a label");
                    }
                // --- interrupts: pending ones are taken at slice starts; these end the slice when one is due
                case Opcode.Sti:
                    s.Rip++;
                    if (!s.InterruptFlag)
                    {
                        s.InterruptFlag = true;
                        if (_pendingInterrupts != 0)
                        {
                            // The STI shadow: one more instruction runs before the interrupt.
                            sl.Budget = Math.Min(sl.Budget, sl.K + costs[(int)i.Cost] + 1);
                        }
                    }
                    break;
                case Opcode.Iretq:
                    st = Iret(ref sl, ref s, in i);
                    if (st != Step.Continue) { return st; }
                    if (_pendingInterrupts != 0 && s.InterruptFlag)
                    {
                        sl.Budget = Math.Min(sl.Budget, sl.K);
                    }
                    break;
                case Opcode.Lidt: _idtr = Ea(ref regs, in i); s.Rip++; break;

                // --- the table's Always rows: platform instructions (priced by the platform), probe
                // and kcall. Each runs at its exact issue instant t; whether it waits for that
                // instant (sequencing) is the instruction's bit, copied by the assembler from its
                // table row. The eager cases above are the None and IfSharedMemory rows;
                // InstructionTableConformanceTests holds the table and these cases in step.
                case Opcode.Rdtsc:
                case Opcode.Rdtscp:
                case Opcode.Rdpid:
                case Opcode.Rdmsr:
                case Opcode.Wrmsr:
                case Opcode.Cpuid:
                case Opcode.InD:
                case Opcode.InI:
                case Opcode.OutD:
                case Opcode.OutI:
                case Opcode.Hlt:
                    {
                        if (!AtItsInstant(ref sl, i.Sync, out long t))
                        {
                            return Step.Yield;
                        }
                        PlatformResult pr = Platform.Execute(this, ref s, in i, SimTime.FromPicosecondsTrusted(t), costs[(int)i.Cost]);
                        st = Apply(ref sl, in pr, s.Rip, i.Line, t);
                        if (st == Step.Stop)
                        {
                            return st;
                        }
                        if (_observer is not null && (i.Op is Opcode.Rdtsc or Opcode.Rdtscp
                            || (i.Op == Opcode.Rdmsr && (uint)Unsafe.Add(ref regs, Registers.Rcx) == Msr.Tsc)))
                        {
                            ulong v = ((ulong)(uint)Unsafe.Add(ref regs, Registers.Rdx) << 32) | (uint)regs;
                            _observer.OnTscRead(this, SimTime.FromPicoseconds(t), new TscValue(v), pr.Exited, pr.GuestCycles + pr.ExitCycles);
                        }
                        sl.Retired++;
                        s.Rip++;
                        if (pr.Halt)
                        {
                            return HaltOrWait(ref sl);
                        }
                        RefreshIfStale(ref sl, sim);
                        if (BudgetSpent(ref sl))
                        {
                            return Step.Yield;
                        }
                        return Step.Continue;
                    }
                case Opcode.Probe:
                    {
                        if (!AtItsInstant(ref sl, i.Sync, out long t))
                        {
                            return Step.Yield;
                        }
                        Observer?.OnProbe(this, SimTime.FromPicoseconds(t), i.Line, a);
                        s.Rip++;
                        sl.Retired++;
                        return Step.Continue;
                    }
                case Opcode.Kcall:
                    {
                        if (!AtItsInstant(ref sl, i.Sync, out long t))
                        {
                            return Step.Yield;
                        }
                        if (Kernel is null)
                        {
                            return Stop(ref sl, GuestFaultKind.InvalidOpcode, s.Rip, i.Line, "kcall without a guest kernel model");
                        }
                        s.Rip++;
                        sl.Retired++;
                        KernelCallResult kr = Kernel.Call(this, (int)i.Imm, SimTime.FromPicoseconds(t),
                            GuestCycles + ExitCycles + sl.Guest + sl.Exit, Exits + sl.Exits);
                        if (kr == KernelCallResult.Wait)
                        {
                            if (_wakePending)
                            {
                                _wakePending = false; // woken before it waited
                            }
                            else
                            {
                                KernelWaiting = true;
                                return Step.Stop;
                            }
                        }
                        if (Halted)
                        {
                            return Step.Stop;
                        }
                        RefreshIfStale(ref sl, sim);
                        return Step.Continue;
                    }

                default:
                    return StopNotExecutable(ref sl, s.Rip, i.Line, i.Op);
            }

            long cost = costs[(int)i.Cost];
            sl.K = checked(sl.K + cost);
            sl.Guest += cost;
            sl.Retired++;
            if (BudgetSpent(ref sl))
            {
                return Step.Yield;
            }
            return Step.Continue;
        }
    }

    /// <summary>
    /// The first <paramref name="count"/> instructions of a push or pop run starting at
    /// <paramref name="rip"/> (<see cref="GuestProgram.StackRuns"/>), on the private range at
    /// <paramref name="buffer"/>[<paramref name="offset"/>..] that holds the whole run's slots
    /// (its lowest address first): what as many single pushes or pops would do, in order, rsp included.
    /// </summary>
    private static void RunStack(ref long regs, Instruction[] code, int rip, int count, byte[] buffer, int offset, bool push)
    {
        ref long rsp = ref Unsafe.Add(ref regs, Registers.Rsp);
        // The caller checked that the run's 8 × (count + 1) bytes lie in the buffer.
        ref byte slots = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(buffer), offset);
        int n = count + 1;
        for (int j = 0; j < count; j++)
        {
            ref long r = ref Unsafe.Add(ref regs, code[rip + j].A);
            if (push)
            {
                // Push j writes at rsp − 8 (j + 1), i.e. slot n − 1 − j from the range's low end.
                WriteQword(ref Unsafe.Add(ref slots, 8 * (n - 1 - j)), r);
            }
            else
            {
                // Pop j reads at rsp + 8 j: slot j.
                r = ReadQword(ref Unsafe.Add(ref slots, 8 * j));
            }
        }
        rsp = push ? rsp - (8L * count) : rsp + (8L * count);
    }

    /// <summary>A little-endian qword (guest memory's byte order) at <paramref name="at"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long ReadQword(ref byte at)
    {
        long v = Unsafe.ReadUnaligned<long>(ref at);
        return BitConverter.IsLittleEndian ? v : BinaryPrimitives.ReverseEndianness(v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WriteQword(ref byte at, long value) =>
        Unsafe.WriteUnaligned(ref at, BitConverter.IsLittleEndian ? value : BinaryPrimitives.ReverseEndianness(value));

    /// <summary>
    /// Per conditional jump (<c>je</c> … <c>jns</c>, from <see cref="Opcode.Je"/>): bit n is set
    /// when it is taken on the flags n = ZF | SF·2 | CF·4 | OF·8 (CpuState's flag bits), the
    /// conditions of its case in the loop.
    /// </summary>
    private static readonly ushort[] JumpTakenMasks = BuildJumpTakenMasks();

    private static ushort[] BuildJumpTakenMasks()
    {
        var masks = new ushort[Opcode.Jns - Opcode.Je + 1];
        for (int n = 0; n < 16; n++)
        {
            bool zf = (n & CpuState.FlagZ) != 0, sf = (n & CpuState.FlagS) != 0, cf = (n & CpuState.FlagC) != 0, of = (n & CpuState.FlagO) != 0;
            for (Opcode op = Opcode.Je; op <= Opcode.Jns; op++)
            {
                bool taken = op switch
                {
                    Opcode.Je => zf,
                    Opcode.Jne => !zf,
                    Opcode.Jb => cf,
                    Opcode.Jae => !cf,
                    Opcode.Jbe => cf || zf,
                    Opcode.Ja => !cf && !zf,
                    Opcode.Jl => sf != of,
                    Opcode.Jge => sf == of,
                    Opcode.Jle => zf || sf != of,
                    Opcode.Jg => !zf && sf == of,
                    Opcode.Js => sf,
                    _ => !sf, // Jns
                };
                if (taken)
                {
                    masks[op - Opcode.Je] |= (ushort)(1 << n);
                }
            }
        }
        return masks;
    }

    /// <summary>
    /// Whether the conditional jump <paramref name="op"/> (<c>je</c> … <c>jns</c>) is taken right
    /// after a <c>cmp</c> or <c>test</c> (flags of origin Sub or Logic), without a branch on the
    /// condition: the four flags as CpuState computes them, then the jump's mask.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TakenAfterCompare(ref CpuState s, Opcode op)
    {
        unchecked
        {
            long r = s.FlagResult, x = s.FlagA, y = s.FlagB;
            int sub = s.FlagKind == FlagOrigin.Sub ? 1 : 0; // a test (Logic) clears CF and OF
            int flags = (r == 0 ? CpuState.FlagZ : 0) | (r < 0 ? CpuState.FlagS : 0)
                | (((ulong)x < (ulong)y ? CpuState.FlagC : 0) & -sub)
                | ((((x ^ y) & (x ^ r)) < 0 ? CpuState.FlagO : 0) & -sub);
            return ((JumpTakenMasks[op - Opcode.Je] >> flags) & 1) != 0;
        }
    }

    /// <summary>A fast-loop RDTSC that ran in guest mode: EDX:EAX = <paramref name="v"/>, and the observer sees a read that did not exit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void RetireNativeRdtsc(ref long regs, long t, ulong v, long cost)
    {
        unchecked
        {
            regs = (long)(uint)v;
            Unsafe.Add(ref regs, Registers.Rdx) = (long)(v >> 32);
        }
        _observer?.OnTscRead(this, SimTime.FromPicosecondsTrusted(t), new TscValue(v), false, cost);
    }

    // Fault messages out of line: formatting state in the loop's frame would be zeroed on every slice.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private Step StopLeftProgram(ref Slice sl, int rip, int length) =>
        Stop(ref sl, GuestFaultKind.BadInstructionPointer, rip, 0, $"execution left the program (instruction index {rip} of {length})");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private Step StopBadReturn(ref Slice sl, int rip, int line, long address) =>
        Stop(ref sl, GuestFaultKind.BadInstructionPointer, rip, line, $"ret to 0x{address:x}, which is not a code address");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private Step StopNotExecutable(ref Slice sl, int rip, int line, Opcode op) =>
        Stop(ref sl, GuestFaultKind.InvalidOpcode, rip, line, $"opcode {op} is not executable");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Ea(ref long regs, in Instruction i) =>
        i.Base == Instruction.NoRegister ? i.Disp : unchecked(Unsafe.Add(ref regs, i.Base) + i.Disp);

    private static void AluWithMemory(ref CpuState s, Opcode op, ref long a, long m)
    {
        unchecked
        {
            long r;
            switch (op)
            {
                case Opcode.AddRM: r = unchecked(a + m); s.SetAdd(a, m, r); a = r; break;
                case Opcode.SubRM: r = unchecked(a - m); s.SetSub(a, m, r); a = r; break;
                case Opcode.AndRM: a &= m; s.SetLogic(a); break;
                case Opcode.OrRM: a |= m; s.SetLogic(a); break;
                case Opcode.XorRM: a ^= m; s.SetLogic(a); break;
                case Opcode.CmpRM: s.SetSub(a, m, unchecked(a - m)); break;
                case Opcode.TestRM: s.SetLogic(a & m); break;
            }
        }
    }

    private static void Shift(ref CpuState s, ref long a, Opcode op, int n)
    {
        unchecked
        {
            if (n == 0)
            {
                return; // flags unchanged, as on x86
            }
            bool cf;
            switch (op)
            {
                case Opcode.ShlRI or Opcode.ShlRC:
                    cf = ((ulong)a >> (64 - n) & 1) != 0;
                    a = (long)((ulong)a << n);
                    s.SetExplicit(a, cf, n == 1 && (a < 0) != cf);
                    break;
                case Opcode.ShrRI or Opcode.ShrRC:
                    cf = ((ulong)a >> (n - 1) & 1) != 0;
                    bool of = n == 1 && a < 0;
                    a = (long)((ulong)a >> n);
                    s.SetExplicit(a, cf, of);
                    break;
                default:
                    cf = (a >> (n - 1) & 1) != 0;
                    a >>= n;
                    s.SetExplicit(a, cf, false);
                    break;
            }
        }
    }
}
