import { createContext, createElement, useContext, useEffect, useMemo, useState, type ReactNode } from 'react'
import { createClient, type ClientOptions, type ConcordClient } from '@concord/client'
import { DocumentCache } from './document-cache.js'

interface ConcordContextValue {
  client: ConcordClient
  documents: DocumentCache
}

const ConcordContext = createContext<ConcordContextValue | null>(null)

export type ConcordProviderProps =
  | {
    /** A client made with `createClient` (the provider never closes it). */
    client: ConcordClient
    url?: never
    options?: never
    fallback?: never
    children?: ReactNode
  }
  | {
    /** The provider makes its own client for this server, and closes it when it unmounts or `url` changes. */
    url: string
    /** The other client options, read when the client is made. */
    options?: Omit<ClientOptions, 'url' | 'urls'>
    /** Shown until the provider's client exists (one commit). */
    fallback?: ReactNode
    client?: never
    children?: ReactNode
  }

/**
 * Makes a Concord client available to the hooks below it. Give it a `client` (made once, outside
 * React), or a `url` to have the provider make one for its lifetime.
 */
export function ConcordProvider(props: ConcordProviderProps): ReactNode {
  const { client: given, url } = props
  const [own, setOwn] = useState<ConcordClient | null>(null)
  useEffect(() => {
    if (given !== undefined || url === undefined) return
    // made in an effect, not while rendering: a render React discards must not leave a socket open
    const made = createClient({ ...props.options, url })
    setOwn(made)
    return () => {
      made.close()
      setOwn(current => (current === made ? null : current))
    }
  }, [given, url]) // options are read when the client is made, not watched
  const client = given ?? own
  const value = useMemo(() => (client === null ? null : { client, documents: new DocumentCache(client) }), [client])
  if (value === null) return props.fallback ?? null
  return createElement(ConcordContext.Provider, { value }, props.children)
}

function useConcord(hook: string): ConcordContextValue {
  const value = useContext(ConcordContext)
  if (value === null) throw new Error(`${hook} needs a <ConcordProvider> above it`)
  return value
}

/** The provider's client. */
export function useClient(): ConcordClient {
  return useConcord('useClient').client
}

/** @internal the provider's document cache (for useDocument). */
export function useDocumentCache(): DocumentCache {
  return useConcord('useDocument').documents
}
