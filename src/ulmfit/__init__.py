"""ulmfit: the models of fast.ai's 2018 course (part 2, lessons 10-11) as first-class transformers models.

Importing the package registers every model with the transformers Auto classes, and marks each class for remote code,
so that `save_pretrained` writes the modeling files next to the weights: a saved folder then loads with
`trust_remote_code=True` where this package is not installed. It also registers two pipelines for tasks transformers
does not have, "translation" (which transformers 5 removed; it comes back for every seq2seq model) and "image-search",
which a saved translator or DeViSE model names and carries for remote code. transformers' own pipelines are left as
they are: an AWD-LSTM classifier uses the stock "text-classification" one.
"""

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageClassification,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForZeroShotImageClassification,
    AutoProcessor,
    AutoTokenizer,
)

from .models.awd_lstm import (
    AwdLstmCausalLMOutput,
    AwdLstmConfig,
    AwdLstmForCausalLM,
    AwdLstmForSequenceClassification,
    AwdLstmModel,
    AwdLstmOutput,
    AwdLstmPreTrainedModel,
    AwdLstmTokenizer,
)
from .models.devise import (
    DeviseConfig,
    DeviseImageProcessor,
    DeviseIndex,
    DeviseModel,
    DeviseOutput,
    DevisePreTrainedModel,
    DeviseProcessor,
    DeviseTokenizer,
    EfficientNetLiteConfig,
    EfficientNetLiteForImageClassification,
    EfficientNetLiteModel,
    load_devise_word_vectors,
)
from .models.gru_seq2seq import (
    GruSeq2SeqConfig,
    GruSeq2SeqEncoderOutput,
    GruSeq2SeqForConditionalGeneration,
    GruSeq2SeqLMOutput,
    GruSeq2SeqModel,
    GruSeq2SeqModelOutput,
    GruSeq2SeqPreTrainedModel,
    GruSeq2SeqState,
    GruSeq2SeqTokenizer,
)
from .pipelines.image_search import ImageSearchPipeline
from .pipelines.registration import register_custom_pipeline
from .pipelines.text_classification import AwdLstmTextClassificationPipeline
from .pipelines.translation import TranslationPipeline
from .plotting import make_image_grid, save_image_grid


__version__ = "0.1.0"

# --- Auto classes, for users who `import ulmfit` ---------------------------------------------------------------------
AutoConfig.register(AwdLstmConfig.model_type, AwdLstmConfig, exist_ok=True)
AutoModel.register(AwdLstmConfig, AwdLstmModel, exist_ok=True)
AutoModelForCausalLM.register(AwdLstmConfig, AwdLstmForCausalLM, exist_ok=True)
AutoModelForSequenceClassification.register(AwdLstmConfig, AwdLstmForSequenceClassification, exist_ok=True)
AutoTokenizer.register(AwdLstmConfig, fast_tokenizer_class=AwdLstmTokenizer, exist_ok=True)

# --- Remote code, for users who do not: save_pretrained copies the defining files and writes `auto_map` --------------
AwdLstmConfig.register_for_auto_class()
AwdLstmModel.register_for_auto_class("AutoModel")
AwdLstmForCausalLM.register_for_auto_class("AutoModelForCausalLM")
AwdLstmForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
AwdLstmTokenizer.register_for_auto_class("AutoTokenizer")

# --- GRU seq2seq translator (fast.ai 2018, lesson 11): Auto classes, remote code, the "translation" pipeline ---------
AutoConfig.register(GruSeq2SeqConfig.model_type, GruSeq2SeqConfig, exist_ok=True)
AutoModel.register(GruSeq2SeqConfig, GruSeq2SeqModel, exist_ok=True)
AutoModelForSeq2SeqLM.register(GruSeq2SeqConfig, GruSeq2SeqForConditionalGeneration, exist_ok=True)
AutoTokenizer.register(GruSeq2SeqConfig, tokenizer_class=GruSeq2SeqTokenizer, exist_ok=True)
GruSeq2SeqConfig.register_for_auto_class()
GruSeq2SeqModel.register_for_auto_class("AutoModel")
GruSeq2SeqForConditionalGeneration.register_for_auto_class("AutoModelForSeq2SeqLM")
GruSeq2SeqTokenizer.register_for_auto_class("AutoTokenizer")
# transformers 5 removed "translation": registering ours brings the task back (for any seq2seq model), and makes a
# saved translator name it in `custom_pipelines` and carry its code, for remote code.
register_custom_pipeline("translation", TranslationPipeline, GruSeq2SeqPreTrainedModel, pt_model=AutoModelForSeq2SeqLM)

# --- DeViSE: Auto classes, remote code, the "image-search" pipeline -------------------------------------------------
# `zero-shot-image-classification` and `image-feature-extraction` are transformers' own pipelines: DeviseModel gives
# them CLIP's `logits_per_image` and `image_embeds`, the tokenizer embeds candidate labels with the word vectors.
AutoConfig.register(DeviseConfig.model_type, DeviseConfig, exist_ok=True)
AutoModel.register(DeviseConfig, DeviseModel, exist_ok=True)
AutoModelForZeroShotImageClassification.register(DeviseConfig, DeviseModel, exist_ok=True)
AutoImageProcessor.register(DeviseConfig, image_processor_classes={"pil": DeviseImageProcessor}, exist_ok=True)
AutoTokenizer.register(DeviseConfig, tokenizer_class=DeviseTokenizer, exist_ok=True)
AutoProcessor.register(DeviseConfig, DeviseProcessor, exist_ok=True)
AutoConfig.register(EfficientNetLiteConfig.model_type, EfficientNetLiteConfig, exist_ok=True)
AutoModel.register(EfficientNetLiteConfig, EfficientNetLiteModel, exist_ok=True)
AutoModelForImageClassification.register(EfficientNetLiteConfig, EfficientNetLiteForImageClassification, exist_ok=True)
DeviseConfig.register_for_auto_class()
DeviseModel.register_for_auto_class("AutoModel")
DeviseImageProcessor.register_for_auto_class("AutoImageProcessor")
DeviseTokenizer.register_for_auto_class("AutoTokenizer")
DeviseProcessor.register_for_auto_class("AutoProcessor")
EfficientNetLiteConfig.register_for_auto_class()
EfficientNetLiteModel.register_for_auto_class("AutoModel")
EfficientNetLiteForImageClassification.register_for_auto_class("AutoModelForImageClassification")
register_custom_pipeline("image-search", ImageSearchPipeline, DevisePreTrainedModel, pt_model=AutoModel)

__all__ = [
    "AwdLstmCausalLMOutput",
    "AwdLstmConfig",
    "AwdLstmForCausalLM",
    "AwdLstmForSequenceClassification",
    "AwdLstmModel",
    "AwdLstmOutput",
    "AwdLstmPreTrainedModel",
    "AwdLstmTextClassificationPipeline",
    "AwdLstmTokenizer",
    "GruSeq2SeqConfig",
    "GruSeq2SeqEncoderOutput",
    "GruSeq2SeqForConditionalGeneration",
    "GruSeq2SeqLMOutput",
    "GruSeq2SeqModel",
    "GruSeq2SeqModelOutput",
    "GruSeq2SeqPreTrainedModel",
    "GruSeq2SeqState",
    "GruSeq2SeqTokenizer",
    "TranslationPipeline",
    # DeViSE
    "DeviseConfig",
    "DeviseImageProcessor",
    "DeviseIndex",
    "DeviseModel",
    "DeviseOutput",
    "DevisePreTrainedModel",
    "DeviseProcessor",
    "DeviseTokenizer",
    "EfficientNetLiteConfig",
    "EfficientNetLiteForImageClassification",
    "EfficientNetLiteModel",
    "ImageSearchPipeline",
    "load_devise_word_vectors",
    "make_image_grid",
    "save_image_grid",
    "__version__",
]
