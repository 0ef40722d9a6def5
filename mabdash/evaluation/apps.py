from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "mabdash.evaluation"
    label = "evaluation"
    verbose_name = "Evaluation: counterfactual reports"
