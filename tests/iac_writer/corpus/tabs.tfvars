web_min_size	=	4	# tab-aligned
web_max_size	=	9



worker_min_size	= 1
