"""llmcat inside other frameworks: Ray Data (``ray_data``) and scikit-learn
(``sklearn_estimator``). Each imports its framework lazily."""
