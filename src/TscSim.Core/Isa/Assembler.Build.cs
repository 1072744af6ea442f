using System.Buffers.Binary;
using System.Collections.Immutable;
using TscSim.Core.Text;

namespace TscSim.Core.Isa;

// Part of the assembler: the second pass and program building. Labels are resolved (with the
// user-code restrictions of UserCode), immediate ranges checked, instructions encoded into the
// GuestProgram.
public static partial class Assembler
{
    private sealed partial class State
    {
        private void ResolveAll()
        {
            foreach (var ins in _code)
            {
                foreach (var op in ins.Operands)
                {
                    if (op.Label is null)
                    {
                        continue;
                    }
                    if (!_labels.TryGetValue(op.Label, out var label))
                    {
                        Error(ins.Line, op.Column, $"unknown label '{op.Label}'{Hint(op.Label, UserVisible(ins.Line))}");
                        continue;
                    }
                    if (!MayRefer(ins.Line, op.Label, label))
                    {
                        Error(ins.Line, op.Column, InternalLabel(op.Label));
                        continue;
                    }
                    if (op.Kind == OperandKind.Label)
                    {
                        if (label.Section != Section.Text)
                        {
                            Error(ins.Line, op.Column, $"'{op.Label}' is a data label; '{ins.Def.Mnemonic}' needs a code label");
                        }
                        op.Value = label.Value;
                    }
                    else if (op.LabelNegated)
                    {
                        Error(ins.Line, op.Column, "a label cannot be subtracted");
                    }
                    else
                    {
                        op.Value = unchecked(op.Value + label.Address);
                    }
                }
                CheckRanges(ins);
            }
            foreach (var d in _data)
            {
                foreach (var (label, _, column) in d.Values)
                {
                    if (label is not null && !_labels.ContainsKey(label))
                    {
                        Error(d.Line, column, $"unknown label '{label}'{Hint(label, UserVisible(d.Line))}");
                    }
                    else if (label is not null && !MayRefer(d.Line, label, _labels[label]))
                    {
                        Error(d.Line, column, InternalLabel(label));
                    }
                }
            }
            if (_code.Count == 0 && Errors.Count == 0)
            {
                Error(_lines.Length, 1, "the program has no instructions");
            }
            else if (_labels.TryGetValue("start", out var start) && start.Section != Section.Text)
            {
                Error(start.Line, 1, "'start' must label an instruction");
            }
        }

        /// <summary>User code may refer to its own labels and to the library's entry points only.</summary>
        private bool MayRefer(int line, string name, LabelInfo label) =>
            !IsUser(line) || IsUser(label.Line) || user!.EntryPoints.Contains(name);

        private string InternalLabel(string name) =>
            $"'{name}' is internal to the guest kernel; a workload may refer to its own labels and call the kernel's entry points: {EntryPointList}";

        /// <summary>The labels a line may name (for "did you mean" hints).</summary>
        private IEnumerable<string> UserVisible(int line) =>
            _labels.Where(l => MayRefer(line, l.Key, l.Value)).Select(l => l.Key);

        private void CheckRanges(PendingInstruction ins)
        {
            Opcode op = ins.Form.Opcode;
            PendingOperand? imm = ins.Operands.FirstOrDefault(o => o.Kind == OperandKind.Imm);
            if (imm is null)
            {
                return;
            }
            switch (op)
            {
                case Opcode.ShlRI or Opcode.ShrRI or Opcode.SarRI or Opcode.ShrdRRI when imm.Value is < 0 or > 63:
                    Error(ins.Line, imm.Column, "expected a shift count from 0 to 63");
                    break;
                case Opcode.InI or Opcode.OutI when imm.Value is < 0 or > 255:
                    Error(ins.Line, imm.Column, "expected a port number from 0 to 255 (use dx for larger ports)");
                    break;
                case Opcode.Work when imm.Value < 0:
                    Error(ins.Line, imm.Column, "expected a non-negative cycle count");
                    break;
            }
        }

        /// <summary>The did-you-mean hint (<see cref="Suggestions"/>), candidates in ordinal order so that ties break alike on every run.</summary>
        private static string Hint(string word, IEnumerable<string> candidates) =>
            Suggestions.Hint(word, candidates.Order(StringComparer.Ordinal));

        public GuestProgram Build()
        {
            var code = new Instruction[_code.Count];
            for (int i = 0; i < code.Length; i++)
            {
                code[i] = Encode(_code[i]);
            }
            var privateData = new byte[_privateSize];
            var sharedData = new byte[_sharedSize];
            foreach (var d in _data)
            {
                byte[] target = d.Section == Section.Data ? privateData : sharedData;
                long offset = d.Offset;
                foreach (var (label, value, _) in d.Values)
                {
                    long v = label is null ? value : _labels[label].Address;
                    BinaryPrimitives.WriteInt64LittleEndian(target.AsSpan((int)offset, 8), v);
                    offset += 8;
                }
            }
            int entry = _labels.TryGetValue("start", out var start) ? (int)start.Value : 0;
            return new GuestProgram(name, code, entry, privateData, sharedData,
                _labels.ToImmutableDictionary(StringComparer.Ordinal), [.. _lines]);
        }

        private static Instruction Encode(PendingInstruction p)
        {
            var ins = new Instruction
            {
                Op = p.Form.Opcode,
                Cost = p.Form.Cost ?? p.Def.Cost,
                Sync = p.Def.Sync,
                Base = Instruction.NoRegister,
                Line = p.Line,
            };
            bool firstRegister = true;
            foreach (var o in p.Operands)
            {
                switch (o.Kind)
                {
                    case OperandKind.Reg64 or OperandKind.Reg32:
                        if (firstRegister)
                        {
                            ins.A = (byte)o.Register;
                            firstRegister = false;
                        }
                        else
                        {
                            ins.B = (byte)o.Register;
                        }
                        break;
                    case OperandKind.Imm:
                        ins.Imm = o.Value;
                        break;
                    case OperandKind.Label:
                        ins.Target = (int)o.Value;
                        break;
                    case OperandKind.Mem64 or OperandKind.Mem32 or OperandKind.Mem8:
                        ins.Base = o.Base;
                        ins.Disp = o.Value;
                        break;
                }
            }
            // Memory-destination forms keep their register source in A (e.g. mov [m], r: A = r).
            return ins;
        }
    }
}
