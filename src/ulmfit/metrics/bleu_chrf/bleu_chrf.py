"""Corpus BLEU and chrF for `evaluate`, computed by sacreBLEU, shipped with ulmfit so that it loads offline.

`evaluate.load("sacrebleu")` and `evaluate.load("chrf")` are Hub scripts, which cannot be reached offline. This module
wraps `sacrebleu` (Post 2018) directly: corpus-level BLEU (Papineni et al. 2002) with sacreBLEU's default `13a`
tokenization and exponential smoothing, and chrF (Popović 2015; chrF++ with `chrf_word_order=2`), both on sacreBLEU's
0-100 scale, each with its signature, so that a reported number says exactly how it was computed. Predictions and
references are detokenized text (what `tokenizer.batch_decode(..., skip_special_tokens=True)` gives).
"""

import datasets
import evaluate
from sacrebleu.metrics import BLEU, CHRF


_DESCRIPTION = (
    "Corpus BLEU (sacreBLEU, 13a tokenization by default) and chrF of detokenized predictions against one or more "
    "references each, on a 0-100 scale, with sacreBLEU's signatures."
)
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): one detokenized translation per sentence.
    references (`list[str]` or `list[list[str]]`): one reference per sentence, or a list of references per sentence
        (every sentence must have the same number).
    tokenize (`str`, *optional*, defaults to `"13a"`): sacreBLEU's BLEU tokenizer (`13a`, `intl`, `char`, `none`, ...).
    lowercase (`bool`, *optional*, defaults to `False`): case-insensitive BLEU and chrF.
    chrf_word_order (`int`, *optional*, defaults to 0): 0 for chrF, 2 for chrF++.
Returns:
    bleu (`float`): corpus BLEU, 0-100.
    chrf (`float`): corpus chrF (or chrF++), 0-100.
    precisions (`list[float]`): the 1- to 4-gram precisions, 0-100.
    brevity_penalty (`float`), length_ratio (`float`), hypothesis_length (`int`), reference_length (`int`).
    bleu_signature (`str`), chrf_signature (`str`): how the scores were computed (sacreBLEU's signatures).
Example:
    >>> from ulmfit import metrics
    >>> metric = metrics.load("bleu_chrf")
    >>> result = metric.compute(predictions=["the cat sat on the mat"], references=["the cat sat on the mat"])
    >>> result["bleu"], result["chrf"]
    (100.00000000000004, 100.0)
"""
_CITATION = """@inproceedings{post-2018-call,
  title={A Call for Clarity in Reporting {BLEU} Scores},
  author={Post, Matt},
  booktitle={Proceedings of the Third Conference on Machine Translation: Research Papers},
  pages={186--191},
  year={2018},
  url={https://aclanthology.org/W18-6319}
}
@inproceedings{papineni-etal-2002-bleu,
  title={{BLEU}: a Method for Automatic Evaluation of Machine Translation},
  author={Papineni, Kishore and Roukos, Salim and Ward, Todd and Zhu, Wei-Jing},
  booktitle={Proceedings of the 40th Annual Meeting of the Association for Computational Linguistics},
  pages={311--318},
  year={2002}
}
@inproceedings{popovic-2015-chrf,
  title={chr{F}: character n-gram {F}-score for automatic {MT} evaluation},
  author={Popovi{\\'c}, Maja},
  booktitle={Proceedings of the Tenth Workshop on Statistical Machine Translation},
  pages={392--395},
  year={2015}
}"""


def _reference_streams(references: list) -> list[list[str]]:
    """sacreBLEU's layout: one stream per reference position, `streams[k][i]` the k-th reference of sentence i."""
    per_sentence = [[reference] if isinstance(reference, str) else list(reference) for reference in references]
    counts = {len(sentence_references) for sentence_references in per_sentence}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(
            f"Every sentence needs the same number (at least one) of references; got counts {sorted(counts)}."
        )
    return [list(stream) for stream in zip(*per_sentence)]


def _check_not_empty(predictions):
    if predictions is None or len(predictions) == 0:
        raise ValueError("Cannot compute BLEU/chrF of zero predictions: `predictions` is empty.")


class BleuChrf(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Value("string"),
                        "references": datasets.Sequence(datasets.Value("string")),
                    }
                ),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
            reference_urls=["https://github.com/mjpost/sacrebleu"],
        )

    # With two accepted input formats, `evaluate` infers the format from the first example, so an empty batch would
    # fail there with an IndexError; it is refused here with a clear message instead.
    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references (`evaluate.Metric.add_batch`)."""
        _check_not_empty(predictions)
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def compute(self, *, predictions=None, references=None, **kwargs):
        """Corpus BLEU and chrF of everything added (`evaluate.Metric.compute`)."""
        if predictions is not None:
            _check_not_empty(predictions)
        return super().compute(predictions=predictions, references=references, **kwargs)

    def _compute(self, predictions, references, tokenize="13a", lowercase=False, chrf_word_order=0):
        _check_not_empty(predictions)
        if len(predictions) != len(references):
            raise ValueError(f"Got {len(predictions)} predictions but {len(references)} references.")
        streams = _reference_streams(references)
        bleu = BLEU(tokenize=tokenize, lowercase=lowercase)
        chrf = CHRF(word_order=chrf_word_order, lowercase=lowercase)
        bleu_score = bleu.corpus_score(list(predictions), streams)
        chrf_score = chrf.corpus_score(list(predictions), streams)
        return {
            "bleu": bleu_score.score,
            "chrf": chrf_score.score,
            "precisions": list(bleu_score.precisions),
            "brevity_penalty": bleu_score.bp,
            "length_ratio": bleu_score.ratio,
            "hypothesis_length": bleu_score.sys_len,
            "reference_length": bleu_score.ref_len,
            "bleu_signature": str(bleu.get_signature()),
            "chrf_signature": str(chrf.get_signature()),
        }
