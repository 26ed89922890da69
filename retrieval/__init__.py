"""hone.retrieval"""
