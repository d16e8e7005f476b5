"""The recipes bundled with mgsr, installed as the package ``mgsr_recipes`` (pyproject maps this folder).

Why a package: a wheel-installed mgsr has no repository beside it, so ``mgsr train pirm_r3`` finds the
recipe through the import system; this folder stays the one source.  :mod:`mgsr.recipe.names` reads it.
"""
