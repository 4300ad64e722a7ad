namespace Tessera.Tokenization;

/// <summary>
/// llama.cpp's <c>clean_spaces</c> (Hugging Face's <c>clean_up_tokenization_spaces</c>) applied to detokenized
/// UTF-8, in place, in the same three passes and with the same quirks as <c>llama_vocab::impl::detokenize</c>.
/// </summary>
internal static class SpaceCleaner
{
    /// <summary>Cleans <paramref name="text"/> in place and returns its new length.</summary>
    public static int Clean(Span<byte> text)
    {
        // first pass: " ?", " !", " .", " ," lose the space
        int total1 = text.Length;
        int total = total1 > 0 ? 1 : 0;
        for (int i = 1; i < total1; i++)
        {
            byte x = text[i];
            if (text[i - 1] == ' ' && x is (byte)'?' or (byte)'!' or (byte)'.' or (byte)',') total--;
            text[total++] = x;
        }

        // second pass: a single apostrophe between spaces loses both spaces
        int total2 = total;
        total = total2 > 0 ? 1 : 0;
        for (int i = 1; i < total2; i++)
        {
            byte x = text[i];
            if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ')
            {
                total--;
                text[++i] = 0;
            }
            text[total++] = x;
        }

        // third pass: " 's", " 'm", " 're", " 've" lose the space
        int total3 = total;
        total = total3 > 0 ? 1 : 0;
        for (int i = 1; i < total3; i++)
        {
            byte x = text[i];
            if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3)
            {
                byte x1 = text[i + 1];
                if (x1 is (byte)'s' or (byte)'m') total--;
                else if (i + 2 < total3)
                {
                    byte x2 = text[i + 2];
                    if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) total--;
                }
            }
            text[total++] = x;
        }
        return total;
    }
}
