"""Tiny French -> English data and configs shared by the GRU translator's tests (and the pipeline tests)."""

from ulmfit import GruSeq2SeqConfig


PAIRS = [
    ("Je suis fatigué.", "I'm tired."),
    ("Il fait froid aujourd'hui.", "It's cold today."),
    ("Qu'est-ce que c'est ?", "What is it?"),
    ("Où est la gare ?", "Where is the station?"),
    ("Je n'aime pas l'école.", "I don't like school."),
    ("Tom est très têtu.", "Tom is very stubborn."),
    ("Elle a un chat noir.", "She has a black cat."),
    ("Pouvez-vous m'aider ?", "Can you help me?"),
    ("Nous sommes en retard.", "We are late."),
    ("C'est l'une d'elles.", "That's one of them."),
    ("J'ai faim.", "I'm hungry."),
    ("Tom a-t-il un chien ?", "Does Tom have a dog?"),
]
SOURCES = [fr for fr, _ in PAIRS]
TARGETS = [en for _, en in PAIRS]


def make_config(tokenizer, **overrides) -> GruSeq2SeqConfig:
    sizes = {"embedding_size": 16, "hidden_size": 12, "num_hidden_layers": 2}
    return GruSeq2SeqConfig(
        vocab_size=tokenizer.vocab_size, decoder_vocab_size=tokenizer.target_vocab_size, **{**sizes, **overrides}
    )
