// A project with its conversations, paged; refetched by id alone through Query.node.
import { graphql } from "react-relay";

export const projectPanel = graphql`
  fragment ProjectPanel_project on Project
  @refetchable(queryName: "ProjectPanelPaginationQuery")
  @argumentDefinitions(
    count: { type: "Int", defaultValue: 20 }
    cursor: { type: "String" }
  ) {
    id
    name
    instructions
    version
    conversationCount
    conversations(first: $count, after: $cursor)
      @connection(key: "ProjectPanel_conversations") {
      totalCount
      edges {
        node {
          id
          ...ConversationRow_conversation
        }
      }
    }
  }
`;
