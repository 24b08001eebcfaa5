// A browser has no keystore: the web build keeps its session in
// localStorage, scoped to the origin that served it.

function store(): Storage | null {
  try {
    return typeof window !== 'undefined' ? window.localStorage : null;
  } catch {
    return null;
  }
}

export async function getItem(key: string): Promise<string | null> {
  return store()?.getItem(key) ?? null;
}

export async function setItem(key: string, value: string): Promise<void> {
  store()?.setItem(key, value);
}

export async function removeItem(key: string): Promise<void> {
  store()?.removeItem(key);
}
