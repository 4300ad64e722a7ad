using NUnit.Framework;
using Tessera.Generation;

namespace Tessera.Tests.Server;

/// <summary>The log-probabilities the server reports, against a double-precision log-softmax.</summary>
public class LogProbTests
{
    [Test]
    public void LogSoftmaxOfTheChosenTokenAndTheTopAlternatives()
    {
        float[] logits = [1.5f, -2f, 3.25f, 0f, 3.25f, 7f];
        double z = Math.Log(logits.Sum(l => Math.Exp(l)));
        var lp = TokenLogProb.Compute(logits, chosen: 3, top: 3);
        Assert.That(lp.Token, Is.EqualTo(3));
        Assert.That(lp.LogProb, Is.EqualTo(0 - z).Within(1e-5));
        // Most likely first; the tie between ids 2 and 4 goes to the lower id, as greedy's argmax does.
        Assert.That(lp.Top.Select(a => a.Token), Is.EqualTo(new[] { 5, 2, 4 }));
        Assert.That(lp.Top.Select(a => (double)a.LogProb), Is.EqualTo(new[] { 7 - z, 3.25 - z, 3.25 - z }).Within(1e-5));
        Assert.That(TokenLogProb.Compute(logits, 0, 0).Top, Is.Empty);
    }

    [Test]
    public void OptionsRejectTooManyAlternatives()
    {
        Assert.That(() => new GenerationOptions { LogProbs = 21 }.Validate(), Throws.ArgumentException.With.Message.Contains("logprobs 21"));
        Assert.That(() => new GenerationOptions { LogProbs = -1 }.Validate(), Throws.ArgumentException);
        Assert.That(() => new GenerationOptions { LogProbs = 20 }.Validate(), Throws.Nothing);
    }
}
