"""The prompts a run sends. Changing any text here changes ``PROMPT_VERSION``.

Log-likelihood prompts copy lm-evaluation-harness's task templates (``medqa_4options``,
``medmcqa``, ``mmlu``, ``pubmedqa``): a raw prompt ending in ``Answer:``, scored on
the continuations `` A``, `` B``… (`` yes``/`` no``/`` maybe`` for PubMedQA).
"""

from __future__ import annotations

from collections.abc import Sequence

from terminus.eval.items import McqItem

PROMPT_VERSION = "medbench-v2"

#: Next-token alternatives asked for per log-likelihood item: enough that the option letters
#: are almost always among them (llama.cpp computes the whole softmax anyway).
DEFAULT_TOP_LOGPROBS = 100

GENERATIVE_SYSTEM = (
    "You are a medical expert answering exam questions. Think briefly if you need to, "
    "then finish with a last line that reads 'Answer: ' followed by your choice."
)


def generative_prompt(item: McqItem) -> str:
    """Zero-shot chat prompt; reasoning allowed, final ``Answer: X`` asked for."""
    parts = []
    if item.context:
        parts.append(f"Context: {item.context}\n")
    parts.append(f"Question: {item.question}\n")
    if item.lettered:
        parts.append("Options:")
        parts.extend(f"({key}) {text}" for key, text in item.options.items())
        keys = ", ".join(item.options)
        parts.append(f"\nEnd with 'Answer: ' and the letter of the correct option ({keys}).")
    else:
        keys = " / ".join(item.options)
        parts.append(f"End with 'Answer: ' and one of {keys}.")
    return "\n".join(parts)


def loglikelihood_prompt(benchmark: str, item: McqItem) -> str:
    """lm-evaluation-harness's prompt for the task closest to ``benchmark``."""
    if benchmark == "pubmedqa":
        return f"Abstract: {item.context}\nQuestion: {item.question}\nAnswer:"
    options = "\n".join(f"{key}. {text}" for key, text in item.options.items())
    if benchmark == "medmcqa":
        return f"Question: {item.question.strip()}\nChoices:\n{options}\nAnswer:"
    if benchmark.startswith("mmlu"):
        subject = str(item.meta.get("subject") or item.meta.get("category") or "medicine")
        subject = subject.replace("_", " ")
        return (
            f"The following are multiple choice questions (with answers) about {subject}.\n\n"
            f"{item.question.strip()}\n{options}\nAnswer:"
        )
    return f"Question: {item.question.strip()}\n{options}\nAnswer:"


def continuations(item: McqItem) -> dict[str, str]:
    """Option key → the continuation lm-eval scores (a space, then the letter or word)."""
    return {key: f" {key}" for key in item.options}


def loglikelihood_text(
    benchmark: str, item: McqItem, shots: Sequence[McqItem] = (), template: str | None = None
) -> str:
    """The log-likelihood prompt with ``shots`` answered before it (lm-eval's few-shot
    layout: examples ended by their answer, separated by a blank line; MMLU's subject
    header once, on top)."""
    from terminus.eval.protocols import render_template

    headed = bool(shots) and benchmark.startswith("mmlu") and not template

    def one(x: McqItem) -> str:
        if template:
            return render_template(template, x)
        text = loglikelihood_prompt(benchmark, x)
        return text.split("\n\n", 1)[1] if headed else text

    if not shots:
        return one(item)
    header = loglikelihood_prompt(benchmark, item).split("\n\n", 1)[0] + "\n\n" if headed else ""
    examples = [one(s) + continuations(s)[s.answer] for s in shots]
    return header + "\n\n".join([*examples, one(item)])


def generative_messages(
    item: McqItem, shots: Sequence[McqItem] = (), template: str | None = None
) -> list[dict[str, str]]:
    """System prompt, each shot as a user turn answered ``Answer: X``, then the item."""
    from terminus.eval.protocols import render_template

    def one(x: McqItem) -> str:
        return render_template(template, x) if template else generative_prompt(x)

    messages = [{"role": "system", "content": GENERATIVE_SYSTEM}]
    for shot in shots:
        messages += [
            {"role": "user", "content": one(shot)},
            {"role": "assistant", "content": f"Answer: {shot.answer}"},
        ]
    messages.append({"role": "user", "content": one(item)})
    return messages
