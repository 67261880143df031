"""DeViSE's model-card text, for `scripts/train_devise.py`."""

from . import FamilyCard


DEVISE_CITATION = """@inproceedings{frome2013devise,
  title={{DeViSE}: A Deep Visual-Semantic Embedding Model},
  author={Frome, Andrea and Corrado, Greg S. and Shlens, Jon and Bengio, Samy and Dean, Jeff and Ranzato,
          Marc'Aurelio and Mikolov, Tomas},
  booktitle={Advances in Neural Information Processing Systems},
  year={2013}
}"""

DEVISE_CARD = FamilyCard(
    architecture=(
        "DeViSE (Frome et al. 2013) as in fast.ai's 2018 lesson 11: a pretrained image backbone, concat pooling and a "
        "two-layer BatchNorm/Dropout/Linear head that regresses images onto their labels' word vectors"
    ),
    description=(
        "A DeViSE model trained with the `ulmfit` package: images are mapped into a word-vector space, so they can be "
        "labelled with any words that have vectors (zero-shot) and searched by text or by image."
    ),
    intended_use=(
        "Zero-shot image classification over candidate labels made of words in its vocabulary, text-to-image and "
        "image-to-image search, and image embeddings (`image-feature-extraction`)."
    ),
    limitations=(
        "It knows only the words of its word-vector vocabulary (a label with another word is an error that names it). "
        "Its hit rates on classes it never trained on are far below those on its training classes, and it inherits "
        "the biases of its images and of the word vectors."
    ),
    usage="""from transformers import pipeline

classifier = pipeline("zero-shot-image-classification", model="{model_id}", trust_remote_code=True)
print(classifier("photo.jpg", candidate_labels=["goldfish", "tabby cat", "school bus"]))""",
    model_class="DeviseModel",
    pipeline_tag="zero-shot-image-classification",
    tags=("ulmfit", "devise", "fastai", "zero-shot-image-classification"),
    citations=(DEVISE_CITATION,),
)


__all__ = ["DEVISE_CARD"]
