"""The GRU seq2seq translator's model-card text, for `scripts/train_translator.py`."""

from . import FamilyCard


BAHDANAU_CITATION = """@inproceedings{bahdanau2015neural,
  title={Neural Machine Translation by Jointly Learning to Align and Translate},
  author={Bahdanau, Dzmitry and Cho, Kyunghyun and Bengio, Yoshua},
  booktitle={International Conference on Learning Representations},
  year={2015},
  url={https://arxiv.org/abs/1409.0473}
}"""
SACREBLEU_CITATION = """@inproceedings{post-2018-call,
  title={A Call for Clarity in Reporting {BLEU} Scores},
  author={Post, Matt},
  booktitle={Proceedings of the Third Conference on Machine Translation: Research Papers},
  pages={186--191},
  year={2018},
  url={https://aclanthology.org/W18-6319}
}"""

TRANSLATOR_CARD = FamilyCard(
    architecture=(
        "attention GRU encoder-decoder (Bahdanau et al. 2015, as in fast.ai's 2018 lesson 11): a bidirectional GRU "
        "encoder, a GRU decoder with additive attention and input feeding, an output layer tied to the decoder "
        "embedding"
    ),
    description=(
        "A French -> English translator trained with the `ulmfit` package: the attention sequence-to-sequence model "
        "of fast.ai's 2018 course (`translate.ipynb`), trained with teacher forcing that decays over training and a "
        "one-cycle schedule. Its `generation_config` holds the decoding settings chosen on the validation pairs "
        "(greedy or beam search, repetition penalty, and a ban on a word following itself), which `generate()` and "
        "the pipeline use unless told otherwise."
    ),
    intended_use="Translate short, everyday French sentences into English, like the sentence pairs it was trained on.",
    limitations=(
        "Its vocabularies are words: a French word unseen in training becomes `xxunk`, and an English word outside "
        "its vocabulary can never be produced. It is small, was trained on short sentences, and degrades on long or "
        "specialised text; it inherits the biases of its training pairs. BLEU and chrF are sacreBLEU's corpus scores "
        "on detokenized text (signatures in `all_results.json`)."
    ),
    usage="""from transformers import pipeline

translator = pipeline("translation", model="{model_id}", trust_remote_code=True)
print(translator(["Je suis fatigué.", "Où est la gare ?"]))  # with the decoding settings saved in the model""",
    model_class="GruSeq2SeqForConditionalGeneration",
    pipeline_tag="translation",
    tags=("ulmfit", "fastai", "translation", "seq2seq", "gru"),
    citations=(
        BAHDANAU_CITATION,
        SACREBLEU_CITATION,
    ),
)


__all__ = ["TRANSLATOR_CARD"]
