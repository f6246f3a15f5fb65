"""Training: the loop, its callbacks, objectives and losses, priors."""
