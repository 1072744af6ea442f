namespace TscSim.Core.Isa;

// Part of the assembler: an instruction's operands, read and matched against the forms of its
// row in the instruction table.
public static partial class Assembler
{
    private sealed partial class State
    {
        private void ParseInstruction(int line, int column, InstructionDef def, List<Token> tokens, int p)
        {
            var operands = new List<PendingOperand>();
            if (tokens[p].Kind != TokenKind.End)
            {
                while (true)
                {
                    var op = ParseOperand(line, def, tokens, ref p);
                    if (op is null)
                    {
                        return;
                    }
                    operands.Add(op);
                    if (tokens[p].Kind == TokenKind.End)
                    {
                        break;
                    }
                    if (tokens[p].Text != ",")
                    {
                        Error(line, tokens[p].Column, "expected ',' or the end of the line");
                        return;
                    }
                    p++;
                }
            }

            InstructionForm? form = def.Forms.FirstOrDefault(f => Matches(f, operands));
            if (form is null)
            {
                string got = operands.Count == 0 ? "no operands" : string.Join(", ", operands.Select(o => Describe(o.Kind)));
                string want = string.Join(" | ", def.Forms.Select(f => f.Operands.Length == 0 ? "(none)" : string.Join(", ", f.Operands.Select(Describe))));
                int col = operands.Count > 0 ? operands[0].Column : column;
                Error(line, col, $"'{def.Mnemonic}' does not take {got}; expected {want}");
                return;
            }
            // Immediate-only labels in branch forms are code labels; plain labels elsewhere become immediates.
            for (int i = 0; i < operands.Count; i++)
            {
                if (form.Operands[i] == OperandKind.Label && operands[i].Kind == OperandKind.Imm)
                {
                    operands[i].Kind = OperandKind.Label;
                }
            }
            _code.Add(new PendingInstruction(line, column, def, form, operands));
        }

        private static bool Matches(InstructionForm form, List<PendingOperand> ops)
        {
            if (form.Operands.Length != ops.Count)
            {
                return false;
            }
            bool hasReg32 = form.Operands.Contains(OperandKind.Reg32);
            for (int i = 0; i < ops.Count; i++)
            {
                OperandKind want = form.Operands[i];
                PendingOperand got = ops[i];
                bool ok = want switch
                {
                    OperandKind.Mem64 => got.Kind == OperandKind.Mem64 && got.Size is 0 or 8,
                    OperandKind.Mem32 => got.Kind == OperandKind.Mem64 && (got.Size == 4 || (got.Size == 0 && hasReg32)),
                    OperandKind.Mem8 => got.Kind == OperandKind.Mem64 && got.Size == 1,
                    OperandKind.Eax => got.Kind == OperandKind.Reg32 && got.Register == Registers.Rax,
                    OperandKind.Label => got.Kind == OperandKind.Imm && got.Label is not null && got.Value == 0,
                    _ => got.Kind == want,
                };
                if (!ok)
                {
                    return false;
                }
            }
            return true;
        }

        private static string Describe(OperandKind k) => k switch
        {
            OperandKind.Reg64 => "a 64-bit register",
            OperandKind.Reg32 => "a 32-bit register",
            OperandKind.Cl => "cl",
            OperandKind.Dx => "dx",
            OperandKind.Eax => "eax",
            OperandKind.Imm => "an immediate",
            OperandKind.Mem64 => "a qword memory operand",
            OperandKind.Mem32 => "a dword memory operand",
            OperandKind.Mem8 => "a byte memory operand",
            OperandKind.Label => "a code label",
            _ => k.ToString(),
        };

        private PendingOperand? ParseOperand(int line, InstructionDef def, List<Token> tokens, ref int p)
        {
            Token t = tokens[p];
            var op = new PendingOperand { Column = t.Column };
            string lower = t.Text.ToLowerInvariant();
            if (t.Kind == TokenKind.Word && lower is "qword" or "dword" or "byte")
            {
                int size = lower == "qword" ? 8 : lower == "dword" ? 4 : 1;
                p++;
                if (tokens[p].Kind == TokenKind.Word && tokens[p].Text.Equals("ptr", StringComparison.OrdinalIgnoreCase))
                {
                    p++;
                }
                if (tokens[p].Text != "[")
                {
                    Error(line, tokens[p].Column, $"expected '[' after '{t.Text}'");
                    return null;
                }
                var mem = ParseMemory(line, tokens, ref p);
                if (mem is not null)
                {
                    mem.Size = size;
                    mem.Column = t.Column;
                }
                return mem;
            }
            if (t.Kind == TokenKind.Punct && t.Text == "[")
            {
                return ParseMemory(line, tokens, ref p);
            }
            if (t.Kind == TokenKind.Word)
            {
                p++;
                if (lower == "cl")
                {
                    op.Kind = OperandKind.Cl;
                    return op;
                }
                if (lower == "dx")
                {
                    op.Kind = OperandKind.Dx;
                    return op;
                }
                int r64 = Registers.Find64(lower);
                if (r64 >= 0)
                {
                    op.Kind = OperandKind.Reg64;
                    op.Register = r64;
                    return op;
                }
                int r32 = Registers.Find32(lower);
                if (r32 >= 0)
                {
                    op.Kind = OperandKind.Reg32;
                    op.Register = r32;
                    return op;
                }
                if (IsOtherRegister(lower))
                {
                    Error(line, t.Column, $"register '{t.Text}' is not modelled; use a 64-bit register (rax … r15) or a 32-bit one (eax … r15d)");
                    return null;
                }
                if (def.Mnemonic == "work")
                {
                    Error(line, t.Column, $"'work' takes a cycle count, got '{t.Text}'; expected a number with its unit, e.g. work 10000cycles");
                    return null;
                }
                op.Kind = OperandKind.Imm;
                op.Label = t.Text;
                return op;
            }
            bool negative = false;
            if (t.Kind == TokenKind.Punct && t.Text == "-")
            {
                negative = true;
                t = tokens[++p];
            }
            if (t.Kind == TokenKind.Number)
            {
                p++;
                op.Kind = OperandKind.Imm;
                op.Value = negative ? unchecked(-t.Value) : t.Value;
                if (tokens[p].Kind == TokenKind.Word && tokens[p].Text == "cycles")
                {
                    if (def.Mnemonic != "work")
                    {
                        Error(line, tokens[p].Column, "the 'cycles' suffix is only for 'work'");
                        return null;
                    }
                    p++;
                }
                else if (def.Mnemonic == "work")
                {
                    string number = (negative ? "-" : "") + t.Text;
                    Error(line, op.Column, $"'{number}' has no unit; expected a cycle count with its unit: write {number}cycles");
                    return null;
                }
                return op;
            }
            Error(line, t.Column, $"expected an operand (register, number, label or [memory]), got '{(t.Kind == TokenKind.End ? "end of line" : t.Text)}'");
            return null;
        }

        private static bool IsOtherRegister(string s) =>
            s is "ax" or "bx" or "cx" or "sp" or "bp" or "si" or "di" or "al" or "ah" or "bl" or "bh" or "ch" or "dl" or "dh"
                or "rip" or "eip" or "cs" or "ds" or "es" or "fs" or "gs" or "ss"
            || (s.StartsWith("xmm", StringComparison.Ordinal) && s.Length > 3 && char.IsAsciiDigit(s[3]));

        private PendingOperand? ParseMemory(int line, List<Token> tokens, ref int p)
        {
            var op = new PendingOperand { Kind = OperandKind.Mem64, Column = tokens[p].Column };
            p++; // '['
            bool first = true;
            while (true)
            {
                Token t = tokens[p];
                bool negative = false;
                if (!first || (t.Kind == TokenKind.Punct && t.Text is "+" or "-"))
                {
                    if (t.Kind == TokenKind.Punct && t.Text == "]" && !first)
                    {
                        p++;
                        return op;
                    }
                    if (t.Kind != TokenKind.Punct || t.Text is not ("+" or "-"))
                    {
                        Error(line, t.Column, "expected '+', '-' or ']' in a memory operand");
                        return null;
                    }
                    negative = t.Text == "-";
                    t = tokens[++p];
                }
                first = false;
                if (t.Kind == TokenKind.Number)
                {
                    op.Value = unchecked(op.Value + (negative ? -t.Value : t.Value));
                }
                else if (t.Kind == TokenKind.Word)
                {
                    string lower = t.Text.ToLowerInvariant();
                    int r = Registers.Find64(lower);
                    if (r >= 0)
                    {
                        if (negative || op.Base != Instruction.NoRegister)
                        {
                            Error(line, t.Column, "a memory operand takes one base register, added: [reg + disp]");
                            return null;
                        }
                        op.Base = (byte)r;
                    }
                    else if (Registers.Find32(lower) >= 0 || IsOtherRegister(lower))
                    {
                        Error(line, t.Column, $"'{t.Text}' cannot address memory; use a 64-bit register");
                        return null;
                    }
                    else
                    {
                        if (op.Label is not null)
                        {
                            Error(line, t.Column, "a memory operand takes at most one label");
                            return null;
                        }
                        op.Label = t.Text;
                        op.LabelNegated = negative;
                    }
                }
                else
                {
                    Error(line, t.Column, $"expected a register, a number or a label in a memory operand, got '{(t.Kind == TokenKind.End ? "end of line" : t.Text)}'");
                    return null;
                }
                p++;
            }
        }
    }
}
