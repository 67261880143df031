"""ulmfit: the models of fast.ai's 2018 course (part 2, lessons 10-11) as first-class transformers models.

Importing the package registers every model with the transformers Auto classes, and marks each class for remote code,
so that `save_pretrained` writes the modeling files next to the weights: a saved folder then loads with
`trust_remote_code=True` where this package is not installed.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
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

__all__ = [
    "AwdLstmCausalLMOutput",
    "AwdLstmConfig",
    "AwdLstmForCausalLM",
    "AwdLstmForSequenceClassification",
    "AwdLstmModel",
    "AwdLstmOutput",
    "AwdLstmPreTrainedModel",
    "AwdLstmTokenizer",
    "__version__",
]
