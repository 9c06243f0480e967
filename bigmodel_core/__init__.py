"""bigmodel_core: the playground's PyTorch engine (configs, data, models, training, runs).

It never imports streamlit; the app in app_pages/ and ui/ is a thin layer over it.
"""

__version__ = "0.1.0"
