using NUnit.Framework;
using Tessera.Generation;

namespace Tessera.Tests.Generation;

public class StopStringFilterTests
{
    [Test]
    public void HoldsBackAPossibleStartAndStopsBeforeTheStopString()
    {
        var f = new StopStringFilter(["THE END"]);
        Assert.That(f.Add("and they lived. T"), Is.EqualTo(("and they lived. ", false)));
        Assert.That(f.Add("HE E"), Is.EqualTo(("", false)));
        Assert.That(f.Add("ND!"), Is.EqualTo(("", true)));
    }

    [Test]
    public void ReleasesHeldTextWhenItTurnsOutNotToBeAStop()
    {
        var f = new StopStringFilter(["</s>"]);
        Assert.That(f.Add("a <"), Is.EqualTo(("a ", false)));
        Assert.That(f.Add("b"), Is.EqualTo(("<b", false)));
        Assert.That(f.Add(" c </"), Is.EqualTo((" c ", false)));
        Assert.That(f.Flush(), Is.EqualTo("</"));
    }

    [Test]
    public void EarliestOfSeveralStopsWins()
    {
        var f = new StopStringFilter(["bb", "a"]);
        Assert.That(f.Add("xxbbya"), Is.EqualTo(("xx", true)));
    }

    [Test]
    public void NoStopsPassesEverything()
    {
        var f = new StopStringFilter([]);
        Assert.That(f.Add("anything"), Is.EqualTo(("anything", false)));
    }
}
