using System.Text;

namespace Tessera.Chat;

/// <summary>
/// Renders a conversation as a prompt. Like llama.cpp's built-in chat formats, the model's Jinja template is not
/// executed: it is recognised by its distinctive markers (ChatML, Llama 3, Llama 2, Zephyr, Gemma, Phi-3) and the
/// matching format is written out. A model without a template gets a plain "User:/Assistant:" transcript.
/// </summary>
public sealed class ChatFormatter
{
    private readonly Style _style;

    /// <summary>The formats Tessera can write.</summary>
    public enum Style
    {
        /// <summary>"User: ...\nAssistant: ..." lines, for models without a template.</summary>
        Plain,
        /// <summary>&lt;|im_start|&gt;role ... &lt;|im_end|&gt; (Qwen, SmolLM, many others).</summary>
        ChatMl,
        /// <summary>&lt;|start_header_id|&gt;role&lt;|end_header_id|&gt; ... &lt;|eot_id|&gt;.</summary>
        Llama3,
        /// <summary>[INST] ... [/INST] (Llama 2, Mistral).</summary>
        Llama2,
        /// <summary>&lt;|user|&gt; ... &lt;/s&gt; (Zephyr, TinyLlama chat).</summary>
        Zephyr,
        /// <summary>&lt;start_of_turn&gt;user ... &lt;end_of_turn&gt;.</summary>
        Gemma,
        /// <summary>&lt;|user|&gt; ... &lt;|end|&gt;.</summary>
        Phi3,
    }

    private ChatFormatter(Style style) => _style = style;

    /// <summary>The format in use.</summary>
    public Style Format => _style;

    /// <summary>Picks the format for a model's template (null or empty: plain transcript).</summary>
    /// <exception cref="NotSupportedException">The template is present but none of the known formats.</exception>
    public static ChatFormatter ForTemplate(string? template)
    {
        if (string.IsNullOrWhiteSpace(template)) return new(Style.Plain);
        if (template.Contains("<|im_start|>")) return new(Style.ChatMl);
        if (template.Contains("<|start_header_id|>")) return new(Style.Llama3);
        if (template.Contains("<start_of_turn>")) return new(Style.Gemma);
        if (template.Contains("<|end|>") && template.Contains("<|user|>")) return new(Style.Phi3);
        if (template.Contains("<|user|>")) return new(Style.Zephyr);
        if (template.Contains("[INST]")) return new(Style.Llama2);
        throw new NotSupportedException("the model's chat template is not one of the formats Tessera knows (ChatML, Llama 2/3, Zephyr, Gemma, Phi-3)");
    }

    /// <summary>
    /// The prompt for <paramref name="messages"/>, ending with the opening of the assistant's turn. The BOS token is
    /// not included: the tokenizer adds it.
    /// </summary>
    public string Render(IReadOnlyList<ChatMessage> messages)
    {
        var sb = new StringBuilder();
        switch (_style)
        {
            case Style.Plain:
                foreach (var m in messages) sb.Append(Capitalize(m.Role)).Append(": ").Append(m.Content).Append('\n');
                sb.Append("Assistant:");
                break;
            case Style.ChatMl:
                foreach (var m in messages) sb.Append("<|im_start|>").Append(m.Role).Append('\n').Append(m.Content).Append("<|im_end|>\n");
                sb.Append("<|im_start|>assistant\n");
                break;
            case Style.Llama3:
                foreach (var m in messages)
                    sb.Append("<|start_header_id|>").Append(m.Role).Append("<|end_header_id|>\n\n").Append(m.Content.Trim()).Append("<|eot_id|>");
                sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n");
                break;
            case Style.Llama2:
                {
                    string? system = null;
                    bool first = true;
                    foreach (var m in messages)
                    {
                        if (m.Role == "system") { system = m.Content; continue; }
                        if (m.Role == "user")
                        {
                            sb.Append(first ? "[INST] " : "<s>[INST] ");
                            if (system != null) { sb.Append("<<SYS>>\n").Append(system).Append("\n<</SYS>>\n\n"); system = null; }
                            sb.Append(m.Content.Trim()).Append(" [/INST]");
                        }
                        else sb.Append(' ').Append(m.Content.Trim()).Append(" </s>");
                        first = false;
                    }
                    break;
                }
            case Style.Zephyr:
                foreach (var m in messages) sb.Append("<|").Append(m.Role).Append("|>\n").Append(m.Content).Append("</s>\n");
                sb.Append("<|assistant|>\n");
                break;
            case Style.Gemma:
                foreach (var m in messages)
                {
                    string role = m.Role == "assistant" ? "model" : "user";
                    sb.Append("<start_of_turn>").Append(role).Append('\n').Append(m.Content.Trim()).Append("<end_of_turn>\n");
                }
                sb.Append("<start_of_turn>model\n");
                break;
            case Style.Phi3:
                foreach (var m in messages) sb.Append("<|").Append(m.Role).Append("|>\n").Append(m.Content).Append("<|end|>\n");
                sb.Append("<|assistant|>\n");
                break;
        }
        return sb.ToString();
    }

    /// <summary>Text that ends an assistant turn in this format (used as a stop string).</summary>
    public IReadOnlyList<string> StopStrings => _style switch
    {
        Style.Plain => ["\nUser:"],
        Style.ChatMl => ["<|im_end|>"],
        Style.Llama3 => ["<|eot_id|>"],
        Style.Gemma => ["<end_of_turn>"],
        Style.Phi3 => ["<|end|>"],
        _ => [],
    };

    private static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];
}
