using TscSim.Core.Abi;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;

namespace TscSim.Tests.Abi;

/// <summary>The one ABI definition: the pvclock record's bytes where pvclock-abi.h puts them, and the constants' values.</summary>
public class AbiTests
{
    [Fact]
    public void Pvclock_record_fields_sit_at_the_offsets_of_pvclock_abi_h()
    {
        byte[] area = new byte[2 * PvclockAbi.Size];
        var info = new PvclockTimeInfo(0x0403_0201, 0x1817_1615_1413_1211, 0x2827_2625_2423_2221, 0x3433_3231, -2, 0x05);
        PvclockAbi.Write(PvclockAbi.Record(area, 1), in info);

        Assert.All(area[..32], b => Assert.Equal(0, b)); // vCPU 0's record untouched
        Assert.Equal(new byte[] { 0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0 }, area[32..40]);            // version @0, pad0
        Assert.Equal(new byte[] { 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18 }, area[40..48]); // tsc_timestamp @8
        Assert.Equal(new byte[] { 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28 }, area[48..56]); // system_time @16
        Assert.Equal(new byte[] { 0x31, 0x32, 0x33, 0x34 }, area[56..60]);                         // tsc_to_system_mul @24
        Assert.Equal(0xFE, area[60]);                                                               // tsc_shift @28 (s8 −2)
        Assert.Equal(0x05, area[61]);                                                               // flags @29
        Assert.Equal(info, PvclockAbi.Read(PvclockAbi.Record(area, 1)));
        Assert.Equal((0x3433_3231u, (sbyte)-2), PvclockAbi.ReadScale(PvclockAbi.Record(area, 1)));
    }

    [Fact]
    public void Clearing_guest_stopped_reports_it_once_and_keeps_other_flags()
    {
        byte[] area = new byte[PvclockAbi.Size];
        area[PvclockAbi.FlagsOffset] = PvclockAbi.TscStableBit | PvclockAbi.GuestStoppedBit | PvclockAbi.TscTrappedBit;

        Assert.True(PvclockAbi.ClearFlag(PvclockAbi.Record(area, 0), PvclockAbi.GuestStoppedBit));
        Assert.False(PvclockAbi.ClearFlag(PvclockAbi.Record(area, 0), PvclockAbi.GuestStoppedBit));
        Assert.Equal(0b1001, area[PvclockAbi.FlagsOffset]);
    }

    [Fact]
    public void Constants_have_their_architectural_values()
    {
        Assert.Equal((1, 2, 8), (PvclockAbi.TscStableBit, PvclockAbi.GuestStoppedBit, PvclockAbi.TscTrappedBit));
        Assert.Equal((0x10u, 0x3Bu, 0xC000_0103u), (Msr.Tsc, Msr.TscAdjust, Msr.TscAux));
        Assert.Equal((0x4B56_4D00u, 0x4B56_4D01u), (Msr.KvmWallClockNew, Msr.KvmSystemTimeNew));
        Assert.Equal(0x4000_0108u, Msr.HvTscEmulationStatus);
        Assert.Equal(3_579_545, AcpiPmTimer.NominalFrequency.HertzFloor);
        Assert.Equal(1_193_182, Pit.NominalFrequency.HertzFloor);
        Assert.Equal(0x0400_0000 + 3 * 32, GuestAddresses.PvclockAddress(3));
        Assert.Equal(0xFED0_00F0, GuestAddresses.HpetBase + GuestAddresses.HpetMainCounter);
    }

    [Fact]
    public void Preset_sources_cite_no_document_outside_the_repository()
    {
        Assert.All(CpuPresets.All, m => Assert.DoesNotContain("DOMAIN", m.Sources));
        Assert.All(OsProfiles.All, p => Assert.DoesNotContain("DOMAIN", p.Source));
    }
}
